"""Slow convergence (the lr too low for the budget), and helpers the other progress rules
(rules_plateau, rules_capacity) share.

Slow is either a pace that has not slowed down by the end of the budget, or a loss that
slowed down with at least half of its start still left and still clearly falling: the
same "high" that underfitting judges, read the other way (underfitting: high and flat).

Shapes are judged on a monotone (isotonic) fit of the train_loss bin medians over the
window (after warmup, before SWA, outside lr rises), so noise and by-design bumps do not
count as progress or as its absence. Slowness is judged on a linear scale: a healthy loss
falling to zero is a straight line on a log scale and must not read as "not slowing".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Value, confidence_from
from services.analyzer.recommend import fmt, lr_changes, nice, switch_to_adam
from services.analyzer.spec_text import change_text, changes_text
from services.analyzer.stats import FloatArray, isotonic_decreasing

__all__ = [
    "FLAT_NOISE",
    "HIGH_SHARE",
    "MIN_BINS",
    "budget_seen",
    "lr_up",
    "lr_up_text",
    "slow_convergence",
]

MIN_BINS = 12
MIN_EVALS = 8
# Slow: the last quarter still removes this share of what the first quarter did, and of
# the whole drop (an exponential decay with a time constant near the run length).
SLOW_RATIO = 0.4
SLOW_SHARE = 0.15
# Or the loss has slowed down but still has at least this share of its start left (a
# floor at zero assumed, as underfitting assumes) and clearly still falls: a run that
# removed under half its loss in the whole budget is not converging, it is too slow.
HIGH_SHARE = 0.5
HIGH_LR_STEP = 3.0
PROGRESS_NOISE = 6.0
# Flat: within this many bin-median noises (plateau, underfitting).
FLAT_NOISE = 4.0
# A running trial is judged on budget-relative rules only past this share of its budget.
RUNNING_MIN_SHARE = 0.5


def budget_seen(curves: Curves, ctx: RunContext) -> bool:
    """Enough of the budget has run to judge the pace of the whole run."""
    track = curves.track("train_loss")
    if track is None:
        return False
    last = int(track.steps[-1])
    if ctx.total_steps is None:
        return not ctx.running
    return last + 1 >= RUNNING_MIN_SHARE * ctx.total_steps


def _last_lr(curves: Curves) -> float | None:
    return None if curves.lr is None else float(curves.lr.values[-1])


def lr_up(ctx: RunContext, curves: Curves, factor: float) -> dict[str, Value]:
    return lr_changes(ctx, factor, _last_lr(curves))


def lr_up_text(ctx: RunContext, curves: Curves, changes: dict[str, Value], factor: float) -> str:
    """'the lr from A to B' for the lr changes of `lr_up` ('the lr about Nx' if none)."""
    lr = {k: v for k, v in changes.items() if k in ("optimizer.lr", "schedule.max_lr")}
    return changes_text(lr, ctx, _last_lr(curves)) if lr else f"the lr about {fmt(factor)}x"


@dataclass(frozen=True)
class _Pace:
    """A loss's monotone trend over the window, to judge how fast it still falls."""

    metric: str
    steps: FloatArray
    fit: FloatArray
    noise: float  # of one fitted point
    raw: Callable[[float], float]

    def at(self, share: float) -> float:
        c = self.steps
        return float(np.interp(c[0] + share * (c[-1] - c[0]), c, self.fit))


def _train_pace(curves: Curves) -> _Pace | None:
    p = curves.train_linear
    if p is None or int(p.usable.sum()) < MIN_BINS:
        return None
    if not bool(np.all(p.y > 0)):
        return None  # a signed surrogate (policy gradient) has no pace to read
    mask = p.usable
    return _Pace("train_loss", p.bins.center[mask], p.iso(mask), p.noise_m(mask), p.raw)


def _val_pace(curves: Curves, ctx: RunContext) -> _Pace | None:
    """val_loss, for when the per-step train loss is too noisy to show its pace: one
    evaluation on a fixed set is far quieter than one batch."""
    v, p = curves.val_linear, curves.train_linear
    if v is None or (p.by_design[p.window].any() if p is not None else ctx.cyclical):
        return None
    keep = v.steps >= ctx.warmup_steps
    if ctx.swa_start_step is not None:
        keep &= v.steps < ctx.swa_start_step
    if int(keep.sum()) < MIN_EVALS:
        return None
    fit = isotonic_decreasing(v.smooth[keep], np.ones(int(keep.sum())))
    return _Pace("val_loss", v.steps[keep].astype(float), fit, v.sigma, v.raw)


def _still_high(pace: _Pace, margin: float) -> bool:
    """At the end of its window the loss keeps at least HIGH_SHARE of its start."""
    start, end = pace.raw(pace.at(0.0)), pace.raw(pace.at(1.0))
    return start > 0 and end >= min(1.0, HIGH_SHARE * margin) * start


def slow_convergence(curves: Curves, ctx: RunContext) -> Finding | None:
    """Still falling at the end, with no slowdown or with most of the loss left: the lr
    is too small for the budget."""
    if not budget_seen(curves, ctx):
        return None
    m = ctx.margin
    for pace in (_train_pace(curves), _val_pace(curves, ctx)):
        if pace is None:
            continue
        first, last = pace.at(0.0) - pace.at(0.25), pace.at(0.75) - pace.at(1.0)
        total = pace.at(0.0) - pace.at(1.0)
        if total < m * PROGRESS_NOISE * pace.noise:
            continue  # no clear progress in this one: the next may show it
        # A first quarter with no progress and a later fall is speeding up: no slowdown.
        need = max(SLOW_RATIO * first, SLOW_SHARE * total)
        if last < m * need:
            if not _still_high(pace, m):
                return None  # it slowed down: converging, not slow
            if last < m * PROGRESS_NOISE * pace.noise:
                continue  # too noisy here to tell that it still falls
            return _slow_finding(pace, first, last, total, need, curves, ctx, still_high=True)
        if last < m * 3 * pace.noise:
            continue  # too noisy here to tell a steady pace from a slowdown
        return _slow_finding(pace, first, last, total, need, curves, ctx)
    return None


def _slow_finding(
    pace: _Pace,
    first: float,
    last: float,
    total: float,
    need: float,
    curves: Curves,
    ctx: RunContext,
    still_high: bool = False,
) -> Finding:
    span = float(pace.steps[-1] - pace.steps[0])
    # An exponential decay e^(-t/tau) has last/first = e^(-0.75 span/tau); aim for
    # tau = span/5 (well converged by the end), assuming the pace scales with the lr.
    tau = 0.75 * span / np.log(first / last) if first > last else np.inf
    factor = float(np.clip(tau / (span / 5), 2.0, 10.0))
    start_level, end_level = pace.raw(pace.at(0.0)), pace.raw(pace.at(1.0))
    if still_high:
        # Its pace slowed, so it says little about the lr a good run needs: half a
        # decade, the usual step of an lr grid, is the next try.
        factor = max(factor, HIGH_LR_STEP)
    changes = lr_up(ctx, curves, factor)
    raise_lr = lr_up_text(ctx, curves, changes, factor)
    alternatives: list[Alternative] = []
    if ctx.optimizer in (None, "sgd"):
        alternatives.append(
            switch_to_adam(
                ctx,
                "an adaptive optimizer takes steps of a useful size whatever the gradient scale",
            )
        )
    if ctx.total_steps:
        longer = int(nice(ctx.total_steps * factor, above=ctx.total_steps))
        alternatives.append(
            Alternative(
                f"Or raise {change_text('budget.max_steps', longer, ctx)} at the same lr.",
                {"budget.max_steps": longer},
            )
        )
    pace_text = (
        f"{fmt(100 * last / first)}% as much loss as the first"
        if first > 0
        else "more loss than the first (the run was speeding up)"
    )
    start_step, end_step = int(pace.steps[0]), int(pace.steps[-1])
    left = 100 * end_level / start_level if start_level > 0 else 100.0
    if still_high:
        summary = (
            f"{pace.metric} (smoothed) fell only from {fmt(start_level)} at step {start_step} "
            "to "
            f"{fmt(end_level)} at step {end_step} ({fmt(left)}% of it left) and is still "
            f"falling: the last quarter removed {fmt(last)} against {fmt(first)} in the first."
        )
        recommendation = (
            f"Raise {raise_lr}: in the whole budget the run removed under "
            f"half of its loss ({fmt(left)}% left) and was still improving at the end, so "
            "its steps are too small to get far, however much the pace slowed."
        )
        confidence = confidence_from(last / (PROGRESS_NOISE * pace.noise), running=ctx.running)
    else:
        summary = (
            f"{pace.metric} (smoothed) fell steadily from {fmt(start_level)} at step "
            f"{start_step} to {fmt(end_level)} at step {end_step} and is still falling: the "
            "last quarter "
            f"removed {fmt(last)} against {fmt(first)} in the first (no slowdown)."
        )
        recommendation = (
            f"Raise {raise_lr}: the last quarter of the run still removed "
            f"{pace_text}, so the run ended far from converged, and while the lr is this far "
            "below stable the pace grows with it."
        )
        confidence = confidence_from(last / need, running=ctx.running)
    return Finding(
        kind="slow_convergence",
        severity="warning",
        confidence=confidence,
        step=start_step,
        summary=summary,
        evidence={
            "metric": pace.metric,
            "first_quarter_drop": first,
            "last_quarter_drop": last,
            "total_drop": total,
            "time_constant_steps": float(tau) if np.isfinite(tau) else None,
            "span_steps": span,
            "share_left": end_level / start_level if start_level > 0 else None,
        },
        recommendation=recommendation,
        changes=changes,
        alternatives=tuple(alternatives),
    )
