"""Overfitting: val_loss climbs from its minimum while train_loss keeps falling.

val_loss is sparse (one point per evaluation), so it is smoothed with a short running
median and its noise taken from neighbour differences where the rise is measured (from
just before the minimum to the end). It is read on a log scale when positive
(curves.val_log): a rise is a ratio, and evaluation noise grows with the level, so a rise
from a quiet minimum is not judged by the noisier stretch above it. The rise must beat
both that noise and a twentieth of val's own drop; a slow, steady climb may show it by
the line through every evaluation after the minimum instead, against that line's
standard error. train_loss must keep falling meanwhile (a rise of both is instability,
not overfitting). The minimum may be the first evaluation: a big model on a tiny
training set can get worse on held-out data from the start. The SWA phase is left out:
its lr is the schedule's choice, and its own averaged result is reported separately.
"""

from __future__ import annotations

import math

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Severity, Value, confidence_from
from services.analyzer.recommend import fmt, lr_changes, nice, weight_decay_change
from services.analyzer.spec_text import changes_text
from services.analyzer.stats import (
    MEDIAN_EFFICIENCY,
    FloatArray,
    IntArray,
    global_curvature_sigma,
    median,
)

__all__ = ["overfitting"]

# The late level (a median of many evaluations, sd ~0.25 sigma) against the minimum of a
# 5-point running median (sd ~0.55 sigma, and biased low by about that much for being a
# minimum): a rise of 3 sigma is more than 3.5 standard errors of their difference.
RISE_NOISE = 3.0
RISE_OF_DROP = 0.05
# Below this share of val's drop the rise is mild: worth knowing, not yet a warning.
MILD_OF_DROP = 0.1
# train_loss keeps falling after val's minimum: by 3 standard errors and 2% of its drop.
TRAIN_FALL_SE = 3.0
TRAIN_FALL_OF_DROP = 0.02
TRAIN_AROUND = 2
# A rise under 2% of val's level is not worth stopping for, however significant.
MIN_RISE = 0.02
MIN_EVALS = 6
# The minimum must leave room for a trend after it: this share of the evaluated span.
MIN_TAIL_SHARE = 0.1
# The rise's noise is measured from this many evaluations before the minimum (the
# running median's width) to the end.
LOCAL_BEFORE = 5


def _trend_rise(steps: IntArray, y: FloatArray, sigma: float) -> tuple[float, float] | None:
    """The rise of the least-squares line through (steps, y) over its span, and the
    standard error of that rise for points of noise `sigma` (None: too few points)."""
    if y.size < MIN_EVALS:
        return None
    x = steps.astype(np.float64)
    dx = x - float(np.mean(x))
    sxx = float(dx @ dx)
    if sxx <= 0.0:
        return None
    span = float(x[-1] - x[0])
    slope = float(dx @ (y - float(np.mean(y)))) / sxx
    return slope * span, sigma * span / float(np.sqrt(sxx))


def overfitting(curves: Curves, ctx: RunContext) -> Finding | None:
    v, p = curves.val_log, curves.train
    if v is None or p is None or p.bins.size < 6:
        return None
    if not bool(np.all(p.y > 0)) and not p.log:
        return None  # a signed surrogate (policy gradient) has no gap to grow
    if ctx.swa_start_step is not None:
        v = v.before(ctx.swa_start_step)
    m = ctx.margin
    if v.size < MIN_EVALS * m:
        return None
    i_min = int(np.argmin(v.smooth))
    v_min = float(v.smooth[i_min])
    step_min = int(v.steps[i_min])
    span = float(v.steps[-1] - v.steps[0])
    if v.size - 1 - i_min < 2 or (v.steps[-1] - step_min) < MIN_TAIL_SHARE * span:
        return None
    k = max(2, (v.size - i_min) // 4)
    v_late = float(median(v.y[-k:]))
    v_drop = max(v.start - v_min, 0.0)
    rise = v_late - v_min
    # The noise where the rise is measured: from just before the minimum to the end.
    # Evaluations at a plateau's chance level are far quieter than those of a model in
    # a steep descent (a saddle being escaped), and a bounce at the bottom of that
    # descent is not a rise out of a settled minimum.
    sigma = global_curvature_sigma(v.y[max(0, i_min - LOCAL_BEFORE) :])
    need = max(RISE_NOISE * sigma, RISE_OF_DROP * v_drop)
    # Significant is not enough: a smooth curve makes a 0.1% rise significant.
    floor = np.log1p(MIN_RISE) if v.log else MIN_RISE * abs(v_min)
    if rise < m * max(need, floor):
        # A slow, steady climb: the late level alone is too few evaluations to tell it
        # from noise, but the line through every evaluation after the minimum is not.
        trend = _trend_rise(v.steps[i_min + 1 :], v.y[i_min + 1 :], sigma)
        if trend is None:
            return None
        rise, se = trend
        need = max(RISE_NOISE * se, RISE_OF_DROP * v_drop)
        if rise < m * max(need, floor):
            return None

    b = p.bins
    # train_loss around val's minimum (the bins within TRAIN_AROUND of it) against its
    # last bins: each a median of several bin medians, so the fall is judged against the
    # standard error of their difference.
    at = int(np.clip(np.searchsorted(b.lo, step_min, side="right") - 1, 0, b.size - 1))
    around = b.med[max(0, at - TRAIN_AROUND) : at + TRAIN_AROUND + 1]
    t_at_min = float(median(around))
    kt = max(2, b.size // 20)
    t_late = float(median(b.med[-kt:]))
    t_drop = max(p.start - float(np.min(b.med)), 0.0)
    se = MEDIAN_EFFICIENCY * p.noise_m() * np.sqrt(1.0 / around.size + 1.0 / kt)
    t_need = max(TRAIN_FALL_SE * se, TRAIN_FALL_OF_DROP * t_drop)
    if t_at_min - t_late < m * t_need:
        return None
    if curves.lr is not None:
        lr = curves.lr
        after = lr.values[lr.steps > step_min]
        if after.size and float(np.max(after)) > 1.1 * lr.value_at(step_min):
            return None  # the lr rose after the minimum: the rise may be by design

    rv, rt = v.raw, p.raw
    gap_min = rv(v_min) - rt(t_at_min)
    gap_late = rv(v_late) - rt(t_late)
    last_step = int(v.steps[-1])
    summary = (
        f"val_loss (smoothed) bottomed out at {fmt(rv(v_min))} at step {step_min} and rose "
        f"to {fmt(rv(v_late))} by step {last_step}, while train_loss (smoothed) went "
        f"{fmt(rt(t_at_min))} -> {fmt(rt(t_late))}: the gap grew from {fmt(gap_min)} to "
        f"{fmt(gap_late)}."
    )
    evidence: dict[str, Value] = {
        "val_min_smoothed": rv(v_min),
        "val_min_step": step_min,
        "val_last_smoothed": rv(v_late),
        "last_step": last_step,
        "train_at_val_min_smoothed": rt(t_at_min),
        "train_last_smoothed": rt(t_late),
        "gap_at_val_min_smoothed": gap_min,
        "gap_last_smoothed": gap_late,
        "log_scale": v.log,
    }
    acc = curves.track("val_accuracy")
    if acc is not None:
        evidence["val_accuracy_at_val_min"] = acc.value_at(step_min)
        evidence["val_accuracy_last"] = float(acc.values[-1])
    severity: Severity = "warning"
    if v_late > v.start:
        severity = "critical"  # worse than the untrained model
    elif rise < MILD_OF_DROP * v_drop:
        severity = "info"
    path, decay = weight_decay_change(ctx)
    decay_change: dict[str, Value] = {path: decay}
    alternatives = [
        Alternative(f"Regularize more: set {changes_text(decay_change, ctx)}.", decay_change)
    ]
    dropout = nice(min(0.5, (ctx.dropout or 0.0) + 0.2))
    if dropout > (ctx.dropout or 0.0):
        more: dict[str, Value] = {"regularization.dropout": dropout}
        alternatives.append(
            Alternative(
                f"Regularize more: set {changes_text(more, ctx)} (where the model has dropout "
                "layers).",
                more,
            )
        )
    observed = None if curves.lr is None else curves.lr.value_at(step_min)
    lower = lr_changes(ctx, 0.5, observed)
    if lower:
        alternatives.append(
            Alternative(
                f"Lower {changes_text(lower, ctx, observed)}: smaller steps fit the noise of "
                "the data less.",
                lower,
            )
        )
    stop: dict[str, Value] = {"budget.max_steps": step_min + 1}
    return Finding(
        kind="overfitting",
        severity=severity,
        # A noiseless level with no drop before it (a dead network's constant val_loss)
        # needs nothing: its rise is as far past that as a rise can be.
        confidence=confidence_from(rise / need if need > 0 else math.inf, running=ctx.running),
        step=step_min,
        summary=summary,
        evidence=evidence,
        recommendation=(
            f"Set {changes_text(stop, ctx)}: stop after step {step_min}, where val_loss was "
            "lowest (the best the run reached); to go further, regularize more (weight "
            "decay, dropout) or lower the lr."
        ),
        changes=stop,
        alternatives=tuple(alternatives),
    )
