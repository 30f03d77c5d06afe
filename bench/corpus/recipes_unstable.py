"""Recipes for an lr too high for the loss: divergence, oscillation, exploding gradients.

Stable lrs measured on these models (plain SGD, batch 32): digits MLP up to ~1.5, the
regression MLP up to ~0.2; both blow up a little above. Warmup to a far too high lr
gives curves that first make progress and then diverge, as a too-ambitious schedule does.
"""

from __future__ import annotations

from bench.corpus.recipe import recipe, trial

__all__ = ["UNSTABLE"]

DIGITS = {"name": "digits", "hidden": [64]}
REGRESSION = {"name": "regression"}
TEXT = {"name": "text", "seq_len": 12, "hidden": 32}
DEEP8 = [32] * 8


def _sgd(lr: float, momentum: float = 0.0) -> dict[str, object]:
    return {"name": "sgd", "lr": lr, "momentum": momentum}


def _warmup(steps: int, start_factor: float) -> dict[str, object]:
    return {"name": "constant", "warmup_steps": steps, "warmup_start_factor": start_factor}


_EXPLODE = ("exploding_gradients",)
_CLIP = {"grad_clip_norm": 1.0}

DIVERGENCE = [
    recipe(
        "divergence",
        "digits",
        "sgd-lr3",
        trial(DIGITS, _sgd(3.0), 400),
        "SGD at lr 3, twice the largest stable lr: the loss grows until it overflows.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "digits",
        "sgd-bs8-lr1",
        trial(DIGITS, _sgd(1.0), 800, batch_size=8),
        "SGD at lr 1 with batch 8: smaller batches lower the stable lr, and the loss grows "
        "exponentially, slowly at first.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "digits",
        "sgd-warmup-lr20",
        trial(DIGITS, _sgd(20.0), 600, schedule=_warmup(300, 0.02)),
        "Warmup from lr 0.4 to 20: progress while the lr is small, a blow-up once it "
        "passes the stable range.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "regression",
        "sgd-lr1",
        trial(REGRESSION, _sgd(1.0), 300),
        "SGD at lr 1 on the regression MLP (stable up to ~0.2): MSE overflows.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "regression",
        "sgd-warmup-lr3",
        trial(REGRESSION, _sgd(3.0), 600, schedule=_warmup(300, 0.01)),
        "Warmup from lr 0.03 to 3: the loss falls, then overflows as the lr passes ~0.3.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "regression",
        "sgd-warmup-lr5-clip",
        trial(REGRESSION, _sgd(5.0), 600, schedule=_warmup(300, 0.01), regularization=_CLIP),
        "As above to lr 5, with clipping at 1: every step is bounded, so the loss stays "
        "finite but climbs well above where it started and stays there.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "text",
        "adam-warmup-lr1",
        trial(TEXT, {"name": "adam", "lr": 1.0}, 400, schedule=_warmup(200, 0.003)),
        "Adam warmed up to lr 1 (~300x the usual 3e-3): the LSTM learns, then its loss "
        "jumps above chance level and stays.",
        also=_EXPLODE,
    ),
    recipe(
        "divergence",
        "text",
        "adam-warmup-lr1-clip",
        trial(
            TEXT,
            {"name": "adam", "lr": 1.0},
            400,
            schedule=_warmup(200, 0.003),
            regularization=_CLIP,
        ),
        "As above with clipping at 1, which does not bound Adam's step: the same blow-up.",
        also=_EXPLODE,
    ),
]

OSCILLATION = [
    recipe(
        "oscillation",
        "regression",
        "sgd-lr0.3",
        trial(REGRESSION, _sgd(0.3), 800),
        "Plain SGD at lr 0.3, just above the regression MLP's smooth range: the loss "
        "bounces between batches' valleys without settling; gradients spike with it.",
        also=_EXPLODE,
    ),
    recipe(
        "oscillation",
        "regression",
        "sgd-lr0.4",
        trial(REGRESSION, _sgd(0.4), 600),
        "Plain SGD at lr 0.4: closer still to divergence, the loss bounces at a high level.",
        also=_EXPLODE,
    ),
    recipe(
        "oscillation",
        "regression",
        "width32-sgd-lr0.25",
        trial({"name": "regression", "hidden": [32]}, _sgd(0.25), 600),
        "A one-layer MLP at lr 0.25, no momentum: progress, then bouncing.",
        also=_EXPLODE,
    ),
    recipe(
        "oscillation",
        "digits",
        "sgd-lr1.4",
        trial(DIGITS, _sgd(1.4), 600),
        "Plain SGD at lr 1.4, just under divergence (lr 1.6 and up diverge, 1.2 is "
        "smooth): loss spikes and val_accuracy swinging between 80% and 96%.",
        seeds=(0, 1, 2, 3, 4, 5, 6, 7),
        also=_EXPLODE,
    ),
]

EXPLODING = [
    recipe(
        "exploding_gradients",
        "digits",
        "deep8-init1.5-sgdm",
        trial({**DIGITS, "hidden": DEEP8, "init_scale": 1.5}, _sgd(0.05, 0.9), 600),
        "Eight ReLU layers with weights 1.5x the default init and SGD+momentum, no "
        "clipping: grad_norm grows by one to two orders of magnitude as training goes.",
        also=("divergence", "oscillation"),
    ),
    recipe(
        "exploding_gradients",
        "digits",
        "deep10-init1.4-sgdm",
        trial({**DIGITS, "hidden": [32] * 10, "init_scale": 1.4}, _sgd(0.03, 0.9), 600),
        "Ten ReLU layers at 1.4x init with SGD+momentum: stuck near the init saddle, then "
        "grad_norm climbs more than a decade and spikes with the loss.",
        also=("plateau", "divergence", "oscillation"),
    ),
    recipe(
        "exploding_gradients",
        "regression",
        "deep8-init1.5-sgdm",
        trial({**REGRESSION, "hidden": DEEP8, "init_scale": 1.5}, _sgd(0.01, 0.9), 600),
        "The same deep, scaled-up ReLU stack on regression.",
        also=("divergence", "oscillation"),
    ),
    recipe(
        "exploding_gradients",
        "text",
        "lstm-sgdm-lr3-bs8",
        trial(TEXT, _sgd(3.0, 0.9), 400, batch_size=8),
        "An LSTM with SGD+momentum at lr 3, batch 8, no clipping: the recurrent "
        "gradient spikes by 100x.",
        also=("divergence", "oscillation"),
    ),
]

UNSTABLE = DIVERGENCE + OSCILLATION + EXPLODING
