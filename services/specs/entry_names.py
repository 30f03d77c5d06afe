"""Schedule and optimizer names as people write them, read as lrlab's registry entries.

W&B sweep files and the configs of runs trained elsewhere name schedules after torch's
classes (`StepLR`, `OneCycleLR`), Hugging Face's `lr_scheduler_type` values
(`cosine_with_restarts`, `constant_with_warmup`) or in words (`one-cycle`, `exp`). A name
is compared with its case, `_`, `-` and spaces dropped (`OneCycleLR` = `one_cycle_lr`).

Every alias is an entry: the native name, and for a few the fields the name implies (a
`triangular2` cyclic schedule, a warmup over 10% of the budget). Fields the entry lacks
(a step's step_size, a one-cycle's max_lr) are derived per trial (`schedule_defaults`).
"""

from __future__ import annotations

from typing import Any

from services.specs.optimizers import OPTIMIZERS
from services.specs.schedules import SCHEDULES

__all__ = [
    "OPTIMIZER_ALIASES",
    "SCHEDULE_ALIASES",
    "WARMUP_FRACTION",
    "alias_key",
    "optimizer_entry",
    "schedule_entry",
]

# The warmup a name such as `constant_with_warmup` implies, as a share of the budget's steps.
WARMUP_FRACTION = 0.1
_WARM = {"warmup_fraction": WARMUP_FRACTION}

# alias -> (native schedule, the fields the name implies)
SCHEDULE_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: ("constant", {}) for name in ("none", "fixed", "const", "constantlr")},
    **{name: ("step", {}) for name in ("steplr", "stepdecay")},
    **{name: ("multistep", {}) for name in ("multisteplr", "multistepdecay")},
    **{name: ("exponential", {}) for name in ("exponentiallr", "exp", "exponentialdecay")},
    **{
        name: ("cosine", {})
        for name in ("cos", "cosineannealing", "cosineannealinglr", "cosinedecay")
    },
    **{
        name: ("cosine_restarts", {})
        for name in (
            "cosinewithrestarts",
            "cosineannealingwarmrestarts",
            "cosinewarmrestarts",
            "sgdr",
        )
    },
    **{name: ("cyclic", {}) for name in ("cycliclr", "clr", "cyclical", "triangular")},
    "triangular2": ("cyclic", {"mode": "triangular2"}),
    "exprange": ("cyclic", {"mode": "exp_range"}),
    **{name: ("one_cycle", {}) for name in ("onecycle", "onecyclelr", "1cycle", "onecyclepolicy")},
    # Hugging Face's polynomial decays to about 0 with power 1 by default: linear.
    **{name: ("linear", {}) for name in ("linearlr", "lineardecay", "polynomial")},
    **{
        name: ("plateau", {})
        for name in ("reducelronplateau", "reduceonplateau", "reducelrplateau")
    },
    **{name: ("constant", _WARM) for name in ("warmup", "constantwithwarmup", "warmupconstant")},
    **{name: ("linear", _WARM) for name in ("linearwithwarmup", "warmuplinear", "linearwarmup")},
    **{name: ("cosine", _WARM) for name in ("cosinewithwarmup", "warmupcosine", "cosinewarmup")},
}
# alias -> (native optimizer, the fields the name implies); Hugging Face's optim values too
OPTIMIZER_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: ("adamw", {}) for name in ("adamwtorch", "adamwhf", "adamwtorchfused")},
    **{name: ("sgd", {"momentum": 0.9}) for name in ("sgdm", "momentum", "sgdmomentum")},
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
}


def alias_key(name: str) -> str:
    """How a name is compared: lower case, without `_`, `-` and spaces."""
    return "".join(char for char in name.lower() if char not in "_- ")


def _natives(registry: dict[str, Any]) -> dict[str, str]:
    return {alias_key(name): name for name in registry}


_SCHEDULES = _natives(SCHEDULES)
_OPTIMIZERS = _natives(OPTIMIZERS)


def _entry(
    name: str, natives: dict[str, str], aliases: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, Any] | None:
    key = alias_key(name)
    if key in natives:
        return {"name": natives[key]}
    if key in aliases:
        native, fields = aliases[key]
        return {"name": native, **fields}
    return None


def schedule_entry(name: str) -> dict[str, Any] | None:
    """The schedule entry `name` stands for ({"name": "one_cycle"}, ...); None if none."""
    return _entry(name, _SCHEDULES, SCHEDULE_ALIASES)


def optimizer_entry(name: str) -> dict[str, Any] | None:
    """The optimizer entry `name` stands for ({"name": "adamw"}, ...); None if none."""
    return _entry(name, _OPTIMIZERS, OPTIMIZER_ALIASES)
