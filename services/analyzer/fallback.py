"""A finding for a kind the classifier chose when that kind's rule did not fire.

The rules measure their condition in detail (onset, noise, a change fitted to the curve);
when the classifier decides a run primarily shows a condition whose rule stayed silent,
this module still gives a finding of that kind: its evidence quotes stored values (the
start, the last and best values of each series), and its advice follows the learning-rate
primer's table: divergence and oscillation lower the lr; slow convergence raises it;
overfitting regularises; underfitting adds capacity; exploding gradients clip (at a
threshold from the stretch before the growth); vanishing gradients change the init,
normalisation, activation or add residual connections, not the lr.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curve_series import Track
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Severity, Value
from services.analyzer.recommend import clip_threshold, lr_changes, weight_decay_change
from services.analyzer.spec_text import changes_text, fmt
from services.analyzer.stats import median

__all__ = ["fallback_finding", "loss_facts", "val_facts"]


def _finite(t: Track) -> Track:
    ok = np.isfinite(t.values)
    return Track(t.steps[ok], t.values[ok])


def loss_facts(curves: Curves) -> tuple[dict[str, Value], str]:
    """Stored values of train_loss: its first, best and last, and a sentence quoting them."""
    t = curves.track("train_loss")
    if t is None:
        return {}, ""
    f = _finite(t)
    if f.size == 0:
        return {
            "train_start": float(t.values[0])
        }, f"train_loss was {fmt(float(t.values[0]))} from the start"
    i = int(np.argmin(f.values))
    start, best, last = float(f.values[0]), float(f.values[i]), float(f.values[-1])
    late = float(median(f.values[-max(3, f.size // 10) :]))
    evidence: dict[str, Value] = {
        "train_start": start,
        "train_best": best,
        "train_best_step": int(f.steps[i]),
        "train_last": last,
        "train_late_median": late,
    }
    return evidence, (
        f"train_loss went from {fmt(start)} to {fmt(last)} (best {fmt(best)} at step "
        f"{int(f.steps[i])}; median of the last tenth {fmt(late)})"
    )


def val_facts(curves: Curves) -> tuple[dict[str, Value], str]:
    t = curves.track("val_loss")
    if t is None:
        return {}, ""
    f = _finite(t)
    if f.size == 0:
        return {}, ""
    i = int(np.argmin(f.values))
    best, last = float(f.values[i]), float(f.values[-1])
    return (
        {"val_best": best, "val_best_step": int(f.steps[i]), "val_last": last},
        f"val_loss best {fmt(best)} at step {int(f.steps[i])}, last {fmt(last)}",
    )


def _grad_facts(curves: Curves) -> tuple[dict[str, Value], str]:
    t = curves.track("grad_norm")
    if t is None:
        return {}, ""
    f = _finite(t)
    if f.size < 4:
        return {}, ""
    k = max(2, f.size // 10)
    early, peak = float(median(f.values[:k])), float(np.max(f.values))
    late = float(median(f.values[-k:]))
    return (
        {"grad_early_median": early, "grad_max": peak, "grad_late_median": late},
        f"grad_norm median {fmt(early)} early, {fmt(late)} late, max {fmt(peak)}",
    )


def _sentence(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


@dataclass(frozen=True)
class Plan:
    """What a kind's advice says: the condition in words, the recommendation, the spec
    changes (applied together) and alternatives to them."""

    what: str
    recommendation: str
    changes: dict[str, Value] = field(default_factory=dict)
    alternatives: tuple[Alternative, ...] = ()


def _lr_plan(ctx: RunContext, factor: float, observed: float | None, what: str, tail: str) -> Plan:
    """Scale the lr by `factor`: the text names each change with the numbers of `changes`
    itself (nothing concrete when no lr is known)."""
    changes = lr_changes(ctx, factor, observed)
    verb = "Lower" if factor < 1 else "Raise"
    text = f"{verb} {changes_text(changes, ctx)}" if changes else f"{verb} the lr"
    return Plan(what, text + tail, changes)


def _divergence(curves: Curves, ctx: RunContext) -> Plan:
    what = "the loss ended far above where it started: the steps are too large"
    return _lr_plan(ctx, 0.1, None, what, " (a tenth) and run again.")


def _oscillation(curves: Curves, ctx: RunContext) -> Plan:
    what = "the loss bounces without settling: each step overshoots"
    plan = _lr_plan(ctx, 1 / 3, None, what, " (a third) so that it settles.")
    if ctx.optimizer == "sgd" and ctx.momentum == 0:
        momentum: dict[str, Value] = {"optimizer.momentum": 0.9}
        text = f"Or keep the lr and set {changes_text(momentum, ctx)} to damp the bounce."
        plan = dataclasses.replace(plan, alternatives=(Alternative(text, momentum),))
    return plan


def _slow(curves: Curves, ctx: RunContext) -> Plan:
    if ctx.warmup_steps and ctx.total_steps and ctx.warmup_steps >= ctx.total_steps:
        warmup: dict[str, Value] = {"schedule.warmup_steps": max(1, ctx.total_steps // 20)}
        return Plan(
            f"the loss was still falling at the end, and the warmup ({ctx.warmup_steps} steps) "
            f"is longer than the run ({ctx.total_steps}): the lr never reached its value",
            f"Shorten {changes_text(warmup, ctx)}.",
            warmup,
        )
    lr = curves.lr
    peak = float(np.max(lr.values)) if lr is not None and lr.size else None
    what = "the loss was still falling steadily at the end: the steps are too small"
    return _lr_plan(ctx, 10.0, peak, what, " (10x), or train for longer.")


def _overfitting(curves: Curves, ctx: RunContext) -> Plan:
    path, decay = weight_decay_change(ctx)
    changes: dict[str, Value] = {path: decay}
    alts: tuple[Alternative, ...] = ()
    if not ctx.dropout:
        dropout: dict[str, Value] = {"regularization.dropout": 0.2}
        alts = (Alternative(f"Or set {changes_text(dropout, ctx)}.", dropout),)
    return Plan(
        "val_loss rose from its best while train_loss kept falling: "
        "the model memorises the training data",
        f"Keep the model from its best evaluation, and raise {changes_text(changes, ctx)}.",
        changes,
        alts,
    )


def _underfitting(curves: Curves, ctx: RunContext) -> Plan:
    changes: dict[str, Value] = {}
    text = "Give the model more capacity (wider or deeper layers)"
    if ctx.hidden:
        changes["task.hidden"] = tuple(2 * w for w in ctx.hidden)
        text = f"Give the model more capacity: {changes_text(changes, ctx)}"
    if ctx.weight_decay:
        text += ", and lower its regularization"
    what = "train_loss stayed high and flat: the model does not fit even the training data"
    return Plan(what, text + ".", changes)


def _exploding(curves: Curves, ctx: RunContext) -> Plan:
    what = "the gradient norm grew by orders of magnitude over its early level"
    threshold = clip_threshold(curves.grad, math.inf)
    if threshold is not None and (not ctx.grad_clip_norm or threshold < ctx.grad_clip_norm):
        clip: dict[str, Value] = {"regularization.grad_clip_norm": threshold}
        return Plan(what, f"Set {changes_text(clip, ctx)} (its usual level before it grew).", clip)
    tail = "; normalization layers or a smaller init also tame the growth."
    return _lr_plan(ctx, 1 / 3, None, what, tail)


def _vanishing(curves: Curves, ctx: RunContext) -> Plan:
    changes: dict[str, Value] = {}
    if ctx.activation in ("sigmoid", "tanh"):
        changes["task.activation"] = "relu"
    if ctx.init_scale is not None and ctx.init_scale < 1:
        changes["task.init_scale"] = 1.0
    concrete = f" Set {changes_text(changes, ctx)}." if changes else ""
    return Plan(
        "the gradient is too small to move the early layers: the loss stays where it started",
        "Change the model, not the lr: a careful initialization (He or Xavier), "
        "normalization layers, residual connections, or a non-saturating activation (ReLU)."
        + concrete,
        changes,
    )


_ADVICE: dict[str, tuple[Severity, Callable[[Curves, RunContext], Plan]]] = {
    "divergence": ("critical", _divergence),
    "oscillation": ("warning", _oscillation),
    "slow_convergence": ("warning", _slow),
    "overfitting": ("warning", _overfitting),
    "underfitting": ("warning", _underfitting),
    "exploding_gradients": ("critical", _exploding),
    "vanishing_gradients": ("critical", _vanishing),
}


def fallback_finding(kind: str, curves: Curves, ctx: RunContext, confidence: float) -> Finding:
    """A finding of `kind` from the curve's stored values and the primer's advice."""
    severity, advice = _ADVICE[kind]
    loss_ev, loss_text = loss_facts(curves)
    val_ev, val_text = val_facts(curves)
    grad_ev, grad_text = _grad_facts(curves)
    plan = advice(curves, ctx)
    return Finding(
        kind=kind,
        severity=severity,
        confidence=round(confidence, 3),
        step=None,
        summary=f"{_sentence(loss_text, val_text, grad_text)}: {plan.what}.",
        evidence={**loss_ev, **val_ev, **grad_ev},
        recommendation=plan.recommendation,
        changes=plan.changes,
        alternatives=plan.alternatives,
    )
