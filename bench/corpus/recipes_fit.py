"""Recipes for how well a run fits: healthy runs and overfitting.

Healthy runs are well-tuned configs, including what the analyzer must not mistake for a
problem: cyclical lrs, warm restarts, warmup, SWA, one-cycle, batches of 1 to 8, a
policy-gradient surrogate loss. Overfitting comes from a tiny training set (or few noisy
samples) with a big model, no regularization and a long run.
"""

from __future__ import annotations

from bench.corpus.recipe import Recipe, recipe, trial

__all__ = ["FIT"]

DIGITS = {"name": "digits", "hidden": [128]}
REGRESSION = {"name": "regression", "n_samples": 4000}
TWO_SEEDS = (0, 1)


def _adam(lr: float) -> dict[str, object]:
    return {"name": "adam", "lr": lr}


def _sgd(lr: float, momentum: float = 0.0) -> dict[str, object]:
    return {"name": "sgd", "lr": lr, "momentum": momentum}


def _healthy(what: str, task: str, spec: dict[str, object], why: str, **kw: object) -> Recipe:
    return recipe("healthy", task, what, spec, why, **kw)


HEALTHY = [
    _healthy(
        "adam",
        "digits",
        trial(DIGITS, _adam(1e-3), 400),
        "Adam 1e-3, batch 32, stopped before the model starts to overfit.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "sgd-momentum-cosine",
        "digits",
        trial(DIGITS, _sgd(0.05, 0.9), 600, schedule={"name": "cosine"}),
        "SGD 0.05 + momentum 0.9, cosine decay.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "sgd-cyclic",
        "digits",
        trial(
            DIGITS,
            _sgd(0.01),
            800,
            schedule={"name": "cyclic", "base_lr": 0.01, "max_lr": 0.5, "step_size_up": 100},
            regularization={"l2": 1e-3},
        ),
        "A triangular cyclic lr between 0.01 and 0.5 every 200 steps: the loss rises "
        "with every lr rise, by design.",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "adam-warm-restarts",
        "digits",
        trial(
            DIGITS,
            _adam(3e-3),
            600,
            schedule={"name": "cosine_restarts", "T_0": 150},
            regularization={"dropout": 0.3},
        ),
        "Adam 3e-3 with cosine warm restarts every 150 steps, dropout 0.3.",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "adam-warmup-cosine",
        "digits",
        trial(
            DIGITS,
            _adam(3e-3),
            500,
            schedule={"name": "cosine", "warmup_steps": 100},
            regularization={"dropout": 0.3},
        ),
        "Adam 3e-3 after a 100-step warmup, cosine decay, dropout 0.3.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "sgd-swa",
        "digits",
        trial(
            DIGITS,
            _sgd(0.05, 0.9),
            600,
            schedule={"name": "cosine", "T_max": 300},
            regularization={"swa": {"start_step": 300, "swa_lr": 0.02, "anneal_steps": 30}},
        ),
        "SGD+momentum, cosine to step 300, then SWA at a constant 0.02 (the lr rises "
        "again at the SWA start, by design).",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "sgd-batch4",
        "digits",
        trial(DIGITS, _sgd(0.01), 800, batch_size=4),
        "Plain SGD 0.01 with batches of 4: a very noisy per-step loss, steady progress.",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "sgd-batch1",
        "digits",
        trial(DIGITS, _sgd(0.003), 1500, eval_every=50, batch_size=1),
        "Batches of one example: each step's loss is one example's, spanning decades; "
        "stored downsampled (1500 steps).",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "cnn-adam",
        "digits",
        trial({"name": "digits", "model": "cnn", "hidden": [32]}, _adam(1e-3), 400),
        "The CNN with Adam 1e-3.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "sgd-one-cycle",
        "digits",
        trial(DIGITS, _sgd(0.02, 0.9), 600, schedule={"name": "one_cycle", "max_lr": 0.2}),
        "One-cycle up to 0.2 with momentum: the lr rises for 30% of the run, by design.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "adam",
        "regression",
        trial(REGRESSION, _adam(3e-3), 800),
        "Adam 3e-3 on 4000 samples.",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "sgd-momentum",
        "regression",
        trial(REGRESSION, _sgd(0.01, 0.9), 800),
        "SGD 0.01 + momentum 0.9.",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "sgd-cyclic-long",
        "regression",
        trial(
            REGRESSION,
            _sgd(0.005, 0.9),
            2000,
            eval_every=25,
            schedule={"name": "cyclic", "base_lr": 0.002, "max_lr": 0.03, "step_size_up": 250},
        ),
        "A cyclic lr (0.002-0.03, momentum 0.9) over 2000 steps, stored downsampled.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "adam-batch8",
        "regression",
        trial(REGRESSION, _adam(3e-3), 1000, batch_size=8),
        "Adam 3e-3 with batches of 8: noisy, heavy-tailed per-step MSE.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "lstm-adam",
        "text",
        trial({"name": "text", "seq_len": 8, "hidden": 32}, _adam(3e-3), 400),
        "The LSTM with Adam 3e-3 on short sequences.",
        seeds=(0, 1, 2),
    ),
    _healthy(
        "transformer-warmup",
        "text",
        trial(
            {"name": "text", "model": "transformer", "seq_len": 12, "hidden": 32},
            _adam(3e-3),
            400,
            schedule={"name": "constant", "warmup_steps": 50},
        ),
        "The transformer with Adam 3e-3 after a 50-step warmup.",
        seeds=TWO_SEEDS,
    ),
    _healthy(
        "adam",
        "cartpole",
        trial(
            {"name": "cartpole", "hidden": 32, "max_episode_steps": 100, "episodes_per_update": 2},
            _adam(1e-2),
            150,
            eval_every=10,
        ),
        "REINFORCE with Adam 1e-2: the return reaches its cap. The training loss is a "
        "policy-gradient surrogate around zero, not a quantity that falls.",
        seeds=(0, 1, 2),
    ),
]

_BIG = [256, 256]
OVERFITTING = [
    recipe(
        "overfitting",
        "digits",
        "subset150-adam",
        trial({"name": "digits", "hidden": _BIG, "train_subset": 150}, _adam(1e-3), 800),
        "150 training images, a 256-256 MLP, no regularization, 800 steps (~170 epochs).",
        seeds=(0, 1, 2, 3, 4),
    ),
    recipe(
        "overfitting",
        "digits",
        "subset100-adam",
        trial({"name": "digits", "hidden": _BIG, "train_subset": 100}, _adam(1e-3), 800),
        "100 training images, the same big MLP and Adam.",
        seeds=(0, 1, 2, 3, 4),
    ),
    recipe(
        "overfitting",
        "digits",
        "cnn-subset100",
        trial(
            {"name": "digits", "model": "cnn", "hidden": [128], "train_subset": 100},
            _adam(3e-3),
            600,
            batch_size=16,
        ),
        "The CNN on 100 images, Adam 3e-3, batch 16.",
        seeds=(0, 1, 2, 3),
    ),
    recipe(
        "overfitting",
        "regression",
        "n100-noisy",
        trial(
            {"name": "regression", "hidden": _BIG, "n_samples": 100, "n_features": 2, "noise": 0.5},
            _adam(3e-3),
            1200,
            eval_every=10,
            batch_size=16,
        ),
        "80 noisy training samples (noise sd 0.5), a 256-256 MLP, 1200 steps: val_loss "
        "falls for a few dozen steps, then rises as the model fits the noise.",
        seeds=(0, 1, 2, 3, 4),
    ),
]

FIT = HEALTHY + OVERFITTING
