"""Which trial-spec field a W&B sweep parameter's name sets.

A name is one of the common names below, or a dotted path into the trial spec
(`optimizer.lr`, `regularization.swa.swa_lr`). A nested group (`optimizer: {parameters:
{lr: ..., momentum: ...}}`) reads as the dotted names `optimizer.lr`, `optimizer.momentum`;
inside a group, a common name that lands in that group works too (`optimizer.learning_rate`
is optimizer.lr). `optimizer`, `scheduler` and `task` set the entry's name, or the whole
entry when their values are objects (`{name: adam, lr: 0.001}`).
"""

from __future__ import annotations

from typing import Any

from services.specs.sweep import check_path
from services.specs.trial import TrialSpec

__all__ = ["ALIASES", "native_path", "understood"]

ALIASES: dict[str, str] = {
    "learning_rate": "optimizer.lr",
    "lr": "optimizer.lr",
    "optimizer": "optimizer.name",
    "momentum": "optimizer.momentum",
    "weight_decay": "optimizer.weight_decay",
    "nesterov": "optimizer.nesterov",
    "eps": "optimizer.eps",
    "betas": "optimizer.betas",
    "batch_size": "batch_size",
    "dropout": "regularization.dropout",
    "l1": "regularization.l1",
    "l2": "regularization.l2",
    "grad_clip": "regularization.grad_clip_norm",
    "grad_clip_norm": "regularization.grad_clip_norm",
    "clip_grad_norm": "regularization.grad_clip_norm",
    "max_grad_norm": "regularization.grad_clip_norm",
    "grad_clip_value": "regularization.grad_clip_value",
    "layer_decay": "regularization.layer_decay",
    "epochs": "budget.epochs",
    "max_steps": "budget.max_steps",
    "scheduler": "schedule.name",
    "schedule": "schedule.name",
    "lr_scheduler": "schedule.name",
    "lr_schedule": "schedule.name",
    "warmup_steps": "schedule.warmup_steps",
    "eval_every": "eval_every",
    "seed": "seed",
    "task": "task.name",
    "dataset": "task.name",
}
# Group names that differ from the trial-spec field they stand for.
_GROUPS = {"scheduler": "schedule", "lr_scheduler": "schedule", "lr_schedule": "schedule"}


def _whole_entry(path: str, values: list[Any]) -> str:
    # {name: adam, lr: ...} as a value of `optimizer` is the whole optimizer, not its name.
    if path.endswith(".name") and values and all(isinstance(v, dict) for v in values):
        return path.removesuffix(".name")
    return path


def native_path(name: str, values: list[Any]) -> str:
    """The trial-spec path `name` stands for (unchecked: see `understood`). `values` are
    the parameter's values or constant, if any."""
    if name in ALIASES:
        return _whole_entry(ALIASES[name], values)
    *groups, leaf = name.split(".")
    prefix = ".".join(_GROUPS.get(group, group) for group in groups)
    alias = ALIASES.get(leaf)
    if prefix and alias is not None and alias.startswith(prefix + "."):
        return _whole_entry(alias, values)
    return f"{prefix}.{leaf}" if prefix else leaf


def understood(name: str, path: str, base: TrialSpec, swept: set[str]) -> str | None:
    """None if `path` (what `name` stands for) is a field of the trial spec; otherwise the
    message that says so and lists the names that are understood."""
    try:
        check_path(path, base, swept)
    except ValueError as exc:
        return (
            f"unknown parameter {name!r}: lrlab understands {', '.join(sorted(ALIASES))}, "
            f"and paths into the trial spec ({exc})"
        )
    return None
