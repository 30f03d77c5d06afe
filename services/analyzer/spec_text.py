"""How a recommended spec change reads in a sentence.

Every spec value a recommendation names is written here from the `changes` map itself,
so the text and the change cannot drift apart: "the lr from 0.5 to 0.15", "the
gradient-norm clip to 6.5", "the warmup to 40 steps". The value the spec holds now comes
from the RunContext ("from ..."), never from a number computed beside the change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from services.analyzer.context import RunContext
from services.analyzer.findings import Value

__all__ = ["SPEC_LABELS", "change_text", "changes_text", "current_value", "fmt", "value_text"]

# What each spec path is called in a sentence; every path a rule may change is here.
SPEC_LABELS: dict[str, str] = {
    "optimizer.lr": "the lr",
    "schedule.max_lr": "the schedule's peak lr",
    "optimizer.name": "the optimizer",
    "optimizer.momentum": "momentum",
    "optimizer.weight_decay": "weight decay",
    "regularization.l2": "weight decay (L2)",
    "regularization.dropout": "dropout",
    "regularization.grad_clip_norm": "the gradient-norm clip",
    "schedule.warmup_steps": "the warmup",
    "batch_size": "the batch size",
    "budget.max_steps": "the budget",
    "task.hidden": "the hidden widths",
    "task.activation": "the activation",
    "task.init_scale": "the init scale",
}
_UNITS = {"schedule.warmup_steps": " steps", "budget.max_steps": " steps"}


def fmt(x: float) -> str:
    """A number for a sentence: 3 significant digits, inf/nan spelled out."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}"


def value_text(path: str, value: Value) -> str:
    """A spec value as a sentence shows it (numbers through `fmt`)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(str(w) for w in value) + "]"
    if isinstance(value, int):
        return str(value) + _UNITS.get(path, "")  # steps and sizes: exact
    if isinstance(value, float):
        return fmt(value) + _UNITS.get(path, "")
    return value


def current_value(path: str, ctx: RunContext, lr_base: float | None = None) -> Value:
    """What the spec holds at `path` now, as far as the context knows (None: unknown).

    `lr_base` is the lr an lr change was computed from when the spec's own is unknown
    (an external run's logged lr)."""
    if path == "optimizer.lr":
        return ctx.lr if ctx.lr is not None else lr_base
    if path == ctx.weight_decay_path:
        return ctx.weight_decay
    known: dict[str, Value] = {
        "schedule.max_lr": ctx.max_lr,
        "optimizer.name": ctx.optimizer,
        "optimizer.momentum": ctx.momentum,
        "regularization.dropout": ctx.dropout,
        "regularization.grad_clip_norm": ctx.grad_clip_norm,
        "schedule.warmup_steps": ctx.warmup_steps or None,
        "batch_size": ctx.batch_size,
        "budget.max_steps": ctx.total_steps,
        "task.hidden": ctx.hidden,
        "task.activation": ctx.activation,
        "task.init_scale": ctx.init_scale,
    }
    return known.get(path)


def change_text(path: str, value: Value, ctx: RunContext, lr_base: float | None = None) -> str:
    """'<label> from <now> to <value>' ('<label> to <value>' when the current value is
    unknown or zero)."""
    now = current_value(path, ctx, lr_base)
    label = SPEC_LABELS[path]
    if now is None or now == 0 or now == value:
        return f"{label} to {value_text(path, value)}"
    return f"{label} from {value_text(path, now)} to {value_text(path, value)}"


def changes_text(
    changes: Mapping[str, Value], ctx: RunContext, lr_base: float | None = None
) -> str:
    """Every change of `changes`, in its order: 'a, b and c'.

    With a new optimizer the lr is that optimizer's, with no "from": an lr of another
    optimizer is on another scale, neither higher nor lower than the old one."""
    switch = changes.get("optimizer.name", ctx.optimizer) != ctx.optimizer
    parts = [
        f"{SPEC_LABELS[path]} to {value_text(path, value)}"
        if switch and path == "optimizer.lr"
        else change_text(path, value, ctx, lr_base)
        for path, value in changes.items()
    ]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
