"""Recipes for too little progress: slow convergence, plateaus, underfitting, vanishing
gradients.

Good lrs on these models: digits MLP SGD 0.1-1 or Adam 1e-3, regression Adam 3e-3, the
text LSTM Adam 3e-3, cart-pole Adam 1e-2. "Slow" runs use 100-1000x less.
"""

from __future__ import annotations

from bench.corpus.recipe import recipe, trial

__all__ = ["PROGRESS"]

DIGITS = {"name": "digits", "hidden": [64]}
REGRESSION = {"name": "regression"}
TEXT = {"name": "text", "seq_len": 12, "hidden": 32}
CARTPOLE = {"name": "cartpole", "hidden": 32, "max_episode_steps": 100, "episodes_per_update": 2}
DEEP8 = [32] * 8


def _adam(lr: float) -> dict[str, object]:
    return {"name": "adam", "lr": lr}


def _sgd(lr: float, momentum: float = 0.0) -> dict[str, object]:
    return {"name": "sgd", "lr": lr, "momentum": momentum}


def _cut(step: int) -> dict[str, object]:
    """A step decay that cuts the lr 1000x at `step`: training stops there."""
    return {"name": "step", "step_size": step, "gamma": 0.001}


SLOW = [
    recipe(
        "slow_convergence",
        "digits",
        "sgd-lr1e-3",
        trial(DIGITS, _sgd(1e-3), 800),
        "Plain SGD at 1e-3, 100-1000x below the useful range: a steady, slow descent.",
    ),
    recipe(
        "slow_convergence",
        "digits",
        "adam-lr1e-5",
        trial(DIGITS, _adam(1e-5), 800),
        "Adam at 1e-5, 100x below its usual 1e-3.",
    ),
    recipe(
        "slow_convergence",
        "digits",
        "cnn-sgd-lr1e-3",
        trial({"name": "digits", "model": "cnn", "hidden": [32]}, _sgd(1e-3), 500),
        "The CNN with plain SGD at 1e-3 (it trains well at 0.1).",
    ),
    recipe(
        "slow_convergence",
        "regression",
        "adam-lr3e-5",
        trial(REGRESSION, _adam(3e-5), 800),
        "Adam at 3e-5 on regression, 100x below 3e-3.",
    ),
    recipe(
        "slow_convergence",
        "regression",
        "adam-lr1e-5",
        trial(REGRESSION, _adam(1e-5), 800),
        "Adam at 1e-5 on regression, 300x below 3e-3.",
    ),
    recipe(
        "slow_convergence",
        "text",
        "adam-lr3e-5",
        trial(TEXT, _adam(3e-5), 400),
        "The LSTM with Adam at 3e-5, 100x below 3e-3.",
        seeds=(0, 1, 2),
    ),
    recipe(
        "slow_convergence",
        "cartpole",
        "adam-lr3e-4",
        trial(CARTPOLE, _adam(3e-4), 150, eval_every=10),
        "REINFORCE with Adam at 3e-4, 30x below 1e-2: the return creeps up. The training "
        "loss is a policy-gradient surrogate with no trend; only val_loss shows progress.",
        seeds=(0, 1, 2),
    ),
]

PLATEAU = [
    recipe(
        "plateau",
        "digits",
        "sgd-lr-cut",
        trial(DIGITS, _sgd(0.05), 800, schedule=_cut(100)),
        "SGD 0.05 with a step decay that cuts the lr 1000x at step 100: nothing moves "
        "for the remaining 700 steps.",
        also=("underfitting",),
    ),
    recipe(
        "plateau",
        "regression",
        "adam-lr-cut",
        trial(REGRESSION, _adam(3e-3), 800, schedule=_cut(80)),
        "Adam 3e-3 cut 1000x at step 80: stuck from there on.",
        also=("underfitting",),
    ),
    recipe(
        "plateau",
        "digits",
        "tanh4-saddle",
        trial(
            {"name": "digits", "hidden": [64] * 4, "activation": "tanh", "init_scale": 0.2},
            _sgd(0.1, 0.9),
            800,
        ),
        "Four tanh layers at 0.2x the default init start near the saddle at zero: flat "
        "for hundreds of steps, then a drop.",
        also=("vanishing_gradients",),
    ),
    recipe(
        "plateau",
        "digits",
        "sigmoid8-adam",
        trial({"name": "digits", "hidden": DEEP8, "activation": "sigmoid"}, _adam(1e-3), 700),
        "Eight sigmoid layers with Adam: stuck at chance until Adam's rescaled steps "
        "reach the early layers, then a drop.",
        also=("vanishing_gradients",),
    ),
    recipe(
        "plateau",
        "text",
        "lstm-sgd-lr5",
        trial(TEXT, _sgd(5.0), 400),
        "The LSTM with plain SGD sits at chance (ln 16) until it finds the long-range "
        "dependency, then the loss drops.",
        seeds=(0, 1, 2),
    ),
]

UNDERFITTING = [
    recipe(
        "underfitting",
        "regression",
        "linear",
        trial({"name": "regression", "hidden": []}, _adam(1e-2), 600),
        "A linear model on a sine-plus-square target: both losses settle high at once.",
        also=("plateau",),
    ),
    recipe(
        "underfitting",
        "regression",
        "width1",
        trial({"name": "regression", "hidden": [1]}, _adam(1e-2), 600),
        "A one-unit hidden layer: too little capacity for the target.",
        also=("plateau",),
    ),
    recipe(
        "underfitting",
        "digits",
        "l2-heavy-sgd",
        trial(DIGITS, _sgd(0.2), 800, regularization={"l2": 0.3}),
        "L2 0.3 (1000x the usual): the weights cannot grow; both losses settle near 1.5.",
        also=("plateau",),
    ),
    recipe(
        "underfitting",
        "digits",
        "l2-heavy-adam",
        trial(DIGITS, _adam(3e-3), 600, regularization={"l2": 0.3}),
        "Adam with L2 0.3: the penalty holds the model at a weak fit.",
        also=("plateau",),
    ),
]

VANISHING = [
    recipe(
        "vanishing_gradients",
        "digits",
        "sigmoid8-full-batch",
        trial(
            {"name": "digits", "hidden": DEEP8, "activation": "sigmoid"},
            _sgd(0.1),
            400,
            batch_size="full",
        ),
        "Eight sigmoid layers, full-batch SGD: the output layer fits the class prior and "
        "no gradient reaches the rest; grad_norm falls by decades at chance loss.",
        also=("plateau", "underfitting"),
    ),
    recipe(
        "vanishing_gradients",
        "digits",
        "tanh8-init0.3-full-batch",
        trial(
            {"name": "digits", "hidden": DEEP8, "activation": "tanh", "init_scale": 0.3},
            _sgd(0.1),
            400,
            batch_size="full",
        ),
        "Eight tanh layers at 0.3x init: the signal shrinks 3x per layer, so does the "
        "gradient; full-batch SGD lets its norm fall once the prior is fitted.",
        also=("plateau", "underfitting"),
    ),
    recipe(
        "vanishing_gradients",
        "digits",
        "sigmoid6-full-batch",
        trial(
            {"name": "digits", "hidden": [32] * 6, "activation": "sigmoid"},
            _sgd(0.05),
            400,
            batch_size="full",
        ),
        "Six sigmoid layers, full-batch SGD at 0.05: the gradient falls by decades as the "
        "output fits the class prior, while the loss stays at chance.",
        also=("plateau", "underfitting"),
    ),
    recipe(
        "vanishing_gradients",
        "regression",
        "sigmoid8-full-batch",
        trial(
            {"name": "regression", "hidden": DEEP8, "activation": "sigmoid"},
            _sgd(0.003),
            600,
            batch_size="full",
        ),
        "Eight sigmoid layers on regression, full batch: the output settles on the "
        "target's mean and the gradient dies away.",
        also=("plateau", "underfitting"),
    ),
]

PROGRESS = SLOW + PLATEAU + UNDERFITTING + VANISHING
