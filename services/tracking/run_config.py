"""What the analyzer can learn from an external run's free-form config.

A run logged from elsewhere has no TrialSpec, only the dict its script passed (as in
`wandb.init(config=...)`). The keys people commonly use (plain names, Hugging Face
TrainingArguments, PyTorch Lightning and Keras arguments) fill a RunContext: learning
rate, optimizer and its momentum, weight decay, gradient clipping, dropout, batch size,
schedule, warmup and budget. A key is looked for at the top level first, then inside the
matching nested mapping (`{"optimizer": {"name": "sgd", "momentum": 0.9}}`, an lrlab-like
`schedule`, `regularization` or `budget`). Anything absent or of the wrong type is left
unknown, and the rules then judge from the series alone (the logged lr series, when there
is one, is trusted over any of these). docs/metric-names.md lists the keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.analyzer import RunContext
from services.specs.entry_names import schedule_entry

_LR = ("lr", "learning_rate", "learning-rate", "base_lr")
_OPTIMIZER = ("optimizer", "optim", "optimizer_name")
_MOMENTUM = ("momentum",)
_WEIGHT_DECAY = ("weight_decay", "wd")  # the optimizer's own (torch's, AdamW's decoupled)
_L2 = ("l2",)  # a penalty added to the loss
_CLIP = (
    "grad_clip_norm",
    "max_grad_norm",  # Hugging Face
    "gradient_clip_val",  # Lightning (a norm unless gradient_clip_algorithm is "value")
    "clip_grad_norm",
    "clipnorm",  # Keras, also an optimizer argument there
)
_DROPOUT = ("dropout", "dropout_rate", "dropout_prob", "hidden_dropout_prob")
_BATCH = ("batch_size", "batch-size", "bs", "train_batch_size", "per_device_train_batch_size")
_SCHEDULE = ("schedule", "scheduler", "lr_schedule", "lr_scheduler", "lr_scheduler_type")
_MAX_LR = ("max_lr",)
_WARMUP = ("warmup_steps", "num_warmup_steps", "warmup")
_WARMUP_RATIO = ("warmup_ratio",)  # Hugging Face: a share of the total steps
_TOTAL = ("max_steps", "total_steps", "steps", "num_steps")
_EPOCHS = ("epochs", "num_train_epochs", "max_epochs", "num_epochs")
_STEPS_PER_EPOCH = ("steps_per_epoch",)

T = TypeVar("T")


def _section(config: Mapping[str, Any], keys: tuple[str, ...]) -> Mapping[str, Any]:
    """The first nested mapping under `keys` (`{"optimizer": {...}}`), else empty."""
    for key in keys:
        value = config.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def _real(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _number(value: Any) -> float | None:
    """A positive number (an lr, a clipping threshold)."""
    real = _real(value)
    return real if real is not None and real > 0 else None


def _non_negative(value: Any) -> float | None:
    """A weight decay: zero is a real answer ("none")."""
    real = _real(value)
    return real if real is not None and real >= 0 else None


def _fraction(value: Any) -> float | None:
    """A momentum or dropout rate: in [0, 1)."""
    real = _real(value)
    return real if real is not None and 0 <= real < 1 else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value > 0 else None


def _name(value: Any) -> str | None:
    if isinstance(value, Mapping):  # {"name": "adamw", "lr": ...}
        value = value.get("name")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _optimizer_name(value: Any) -> str | None:
    """Hugging Face's `optim` values name an implementation too ("adamw_torch_fused")."""
    name = _name(value)
    return "adamw" if name is not None and name.startswith("adamw_") else name


def _schedule_name(value: Any) -> str | None:
    # torch's class names, Hugging Face's lr_scheduler_type values and common spellings
    # read as lrlab's (specs.entry_names), so that a cyclical schedule's by-design loss
    # rises are recognised as such; a name it does not know is kept as given.
    name = _name(value)
    if name is None:
        return None
    entry = schedule_entry(name)
    return str(entry["name"]) if entry is not None else name


class _Config:
    """Lookups in a run's config: each key at the top level, then in the nested sections
    named; the first value that `parse` accepts wins (a malformed one is passed over)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.top = config
        self.optimizer = _section(config, _OPTIMIZER)
        self.schedule = _section(config, _SCHEDULE)
        self.regularization = _section(config, ("regularization",))
        self.budget = _section(config, ("budget",))

    def read(
        self, keys: tuple[str, ...], parse: Callable[[Any], T | None], *sections: Mapping[str, Any]
    ) -> T | None:
        for scope in (self.top, *sections):
            for key in keys:
                value = parse(scope.get(key))
                if value is not None:
                    return value
        return None


def _clip_norm(c: _Config) -> float | None:
    if c.top.get("gradient_clip_algorithm") == "value":  # Lightning clipping by value
        return None
    return c.read(_CLIP, _number, c.optimizer, c.regularization)


def _weight_decay(c: _Config, optimizer: str | None) -> tuple[float | None, str]:
    """The weight decay and where it lives, as RunContext.weight_decay_path says."""
    decoupled = c.read(_WEIGHT_DECAY, _non_negative, c.optimizer)
    if decoupled is not None:
        return decoupled, "optimizer.weight_decay"
    l2 = c.read(_L2, _non_negative, c.regularization)
    if l2 is not None:
        return l2, "regularization.l2"
    return None, "optimizer.weight_decay" if optimizer == "adamw" else "regularization.l2"


def _total_steps(c: _Config) -> int | None:
    """The budget in steps: max_steps, or epochs when the steps in one are known."""
    steps = c.read(_TOTAL, _count, c.budget)
    if steps is not None:
        return steps
    epochs = c.read(_EPOCHS, _number, c.budget)
    per_epoch = c.read(_STEPS_PER_EPOCH, _count, c.budget)
    return round(epochs * per_epoch) if epochs is not None and per_epoch is not None else None


def _warmup_steps(c: _Config, total: int | None) -> int:
    steps = c.read(_WARMUP, _count, c.schedule)
    if steps is not None:
        return steps
    ratio = c.read(_WARMUP_RATIO, _fraction, c.schedule)
    return math.ceil(ratio * total) if ratio is not None and total is not None else 0


def context_from_config(
    config: Mapping[str, Any], *, running: bool, total_steps: int | None
) -> RunContext:
    """The RunContext of an external run; `total_steps` (known once it ended) wins."""
    c = _Config(config)
    optimizer = c.read(_OPTIMIZER, _optimizer_name)
    planned = _total_steps(c)
    weight_decay, weight_decay_path = _weight_decay(c, optimizer)
    return RunContext(
        lr=c.read(_LR, _number, c.optimizer),
        optimizer=optimizer,
        schedule=c.read(_SCHEDULE, _schedule_name),
        warmup_steps=_warmup_steps(c, planned or total_steps),
        total_steps=total_steps or planned,
        batch_size=c.read(_BATCH, _count),
        running=running,
        max_lr=c.read(_MAX_LR, _number, c.schedule),
        momentum=c.read(_MOMENTUM, _fraction, c.optimizer),
        weight_decay=weight_decay,
        weight_decay_path=weight_decay_path,
        dropout=c.read(_DROPOUT, _fraction, c.regularization),
        grad_clip_norm=_clip_norm(c),
    )
