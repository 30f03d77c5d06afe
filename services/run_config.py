"""What the analyzer can learn from an external run's free-form config.

A run logged from elsewhere has no TrialSpec, only the dict its script passed (as in
`wandb.init(config=...)`). The keys people commonly use for the learning rate, optimizer,
batch size, schedule and budget fill a RunContext; anything absent or of the wrong type is
left unknown, and the rules then judge from the series alone (the logged lr series, when
there is one, is trusted over any of these).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.analyzer import RunContext

_LR = ("lr", "learning_rate", "learning-rate", "base_lr")
_OPTIMIZER = ("optimizer", "optim", "optimizer_name")
_BATCH = ("batch_size", "batch-size", "bs", "train_batch_size")
_SCHEDULE = ("schedule", "scheduler", "lr_schedule", "lr_scheduler")
_WARMUP = ("warmup_steps", "warmup")
_TOTAL = ("max_steps", "total_steps", "steps", "num_steps")

# torch.optim.lr_scheduler class names and common spellings -> lrlab's schedule names,
# so that a cyclical schedule's by-design loss rises are recognised as such.
_SCHEDULE_NAMES = {
    "cycliclr": "cyclic",
    "cyclic": "cyclic",
    "onecyclelr": "one_cycle",
    "onecycle": "one_cycle",
    "one_cycle": "one_cycle",
    "cosineannealingwarmrestarts": "cosine_restarts",
    "cosine_restarts": "cosine_restarts",
    "sgdr": "cosine_restarts",
    "cosineannealinglr": "cosine",
    "cosine": "cosine",
    "steplr": "step",
    "step": "step",
    "exponentiallr": "exponential",
    "exponential": "exponential",
    "constant": "constant",
    "constantlr": "constant",
    "linear": "linear",
    "linearlr": "linear",
}


def _first(config: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in config:
            return config[key]
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value > 0 else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value > 0 else None


def _name(value: Any) -> str | None:
    if isinstance(value, Mapping):  # {"name": "adamw", "lr": ...}
        value = value.get("name")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def context_from_config(
    config: Mapping[str, Any], *, running: bool, total_steps: int | None
) -> RunContext:
    """The RunContext of an external run; `total_steps` (known once it ended) wins."""
    optimizer = _first(config, _OPTIMIZER)
    lr = _number(_first(config, _LR))
    if lr is None and isinstance(optimizer, Mapping):
        lr = _number(optimizer.get("lr"))
    schedule = _name(_first(config, _SCHEDULE))
    return RunContext(
        lr=lr,
        optimizer=_name(optimizer),
        schedule=_SCHEDULE_NAMES.get(schedule.replace("-", "_"), schedule) if schedule else None,
        warmup_steps=_count(_first(config, _WARMUP)) or 0,
        total_steps=total_steps or _count(_first(config, _TOTAL)),
        batch_size=_count(_first(config, _BATCH)),
        running=running,
    )
