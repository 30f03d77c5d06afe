"""Divergence, and the lower-the-lr advice it shares with oscillation (rules_oscillation).

Both read train_loss in its working scale (see profile.py). Thresholds are multiples of
the curve's own noise and of its own drop (start -> best), so they hold at any loss scale.
"""

from __future__ import annotations

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Severity, Value, confidence_from
from services.analyzer.profile import LossProfile
from services.analyzer.quote import bin_point, head_point
from services.analyzer.recommend import (
    HEAVY_MOMENTUM,
    clip_threshold,
    fell_clearly,
    fmt,
    lower_lr_advice,
    lr_changes,
    nice,
    warmup_steps_for,
)
from services.analyzer.spec_text import change_text, changes_text
from services.analyzer.stats import FloatArray, global_diff_sigma, median

__all__ = ["divergence", "lr_text", "stability_changes"]

# Divergence: the loss gave back at least half of what it had gained, and far more than
# a step's noise; the run's end sits in the raised part.
GIVE_BACK = 0.5
RISE_NOISE = 3.0
RISE_NOISE_MEDIAN = 8.0
START_NOISE = 4.0
# Blown up at once: nearly all of the run (this share of its bins) and its end sit a decade
# or more above the loss at its first step, the untrained model's. A decade is the unit
# the gradient rules use for an explosion; even a heavy-tailed batch loss (MSE at batch 8)
# has a per-step spread of about half a decade at most, and a median of bins far less.
AT_ONCE_DECADES = 1.0
AT_ONCE_SHARE = 0.9
MIN_WITNESS = 5


def _rise_onset(med: np.ndarray, after: int, level: float) -> int:
    """First bin after `after` from which the curve stays above `level`."""
    suffix_min = np.minimum.accumulate(med[::-1])[::-1]
    above = np.flatnonzero(suffix_min[after + 1 :] > level)
    return after + 1 + int(above[0]) if above.size else med.size - 1


def _far_above(values: FloatArray, ceiling: float) -> float | None:
    """Decades above `ceiling` / 10**AT_ONCE_DECADES of the lower AT_ONCE_SHARE quantile
    of `values`, when it and the last tenth of them are at or above `ceiling`."""
    if values.size < MIN_WITNESS:
        return None
    low = float(np.quantile(values, 1.0 - AT_ONCE_SHARE))
    late = float(median(values[-max(2, values.size // 10) :]))
    if low < ceiling or late < ceiling:
        return None
    return float(np.log10(low * 10**AT_ONCE_DECADES / ceiling))


def _blown_up_at_once(p: LossProfile, curves: Curves) -> tuple[int, float, float, str] | None:
    """(first step a decade above the first point, that first value, decades above it,
    the witness: "bins" or "evaluations")
    when the loss jumped far above its untrained level within its first steps and never
    came back (a clipped blow-up stays finite). The usual start, a median of the first
    points, is already the blown-up level then. Two witnesses, either suffices: the train
    bin medians, and the evaluations (a fixed set: no batch noise, and no batches of a
    saturated cross-entropy that round to exactly 0 and pull bin medians down)."""
    b = p.bins
    if b.size < 6 or p.y.size == 0:
        return None
    first = p.raw(float(p.y[0]))
    if not first > 0 or not (p.log or bool(np.all(p.y >= 0))):
        return None  # a signed surrogate (policy gradient) is no loss to compare with
    ceiling = first * 10**AT_ONCE_DECADES
    decades, witness = _far_above(np.exp(b.med) if p.log else b.med, ceiling), "bins"
    v = curves.val
    if v is not None and v.size:
        seen = _far_above(np.exp(v.y) if v.log else v.y, ceiling)
        if seen is not None and (decades is None or seen > decades):
            decades, witness = seen, "evaluations"
    if decades is None:
        return None
    raw = np.exp(p.y) if p.log else p.y
    above = np.flatnonzero(raw >= ceiling)
    onset = int(p.steps[above[0]]) if above.size else int(p.steps[0])
    return onset, first, decades, witness


def lr_text(p: LossProfile, curves: Curves, ctx: RunContext, onset_bin: int) -> str:
    if curves.lr is not None and p.bins.size:
        return f" (lr {fmt(curves.lr.value_at(float(p.bins.lo[onset_bin])))})"
    return f" (lr {fmt(ctx.lr)})" if ctx.lr else ""


def _momentum_alternative(ctx: RunContext, changes: dict[str, Value]) -> Alternative | None:
    """Plain SGD (momentum known to be 0): momentum 0.9 with a 10x lower lr than the
    plan's, the same effective step averaged over batches. Heavy momentum: back to 0.9.
    None when the momentum is unknown or already moderate: never 'add' what is there."""
    if ctx.optimizer != "sgd" or ctx.momentum is None:
        return None
    if ctx.momentum > HEAVY_MOMENTUM:
        change: dict[str, Value] = {"optimizer.momentum": HEAVY_MOMENTUM}
        return Alternative(
            f"Lower {changes_text(change, ctx)}: the effective step is lr / (1 - momentum), "
            "so heavy momentum multiplies it.",
            change,
        )
    lowered = changes.get("optimizer.lr")
    if ctx.momentum != 0 or not isinstance(lowered, float):
        return None
    change = {"optimizer.momentum": HEAVY_MOMENTUM, "optimizer.lr": nice(lowered / 10)}
    return Alternative(
        f"Set {changes_text(change, ctx)} (the same effective step, averaged over "
        "batches, so single noisy batches move the weights less).",
        change,
    )


def stability_changes(
    p: LossProfile,
    curves: Curves,
    ctx: RunContext,
    onset_bin: int,
    onset_step: int,
    *,
    blow_up: bool,
) -> tuple[str, dict[str, Value], list[Alternative]]:
    """Lower lr (from the data); for a blow-up also warmup (if early) and clipping."""
    advice = lower_lr_advice(p, curves.lr, onset_bin, ctx)
    changes = advice.changes(ctx)
    parts = [advice.text(ctx, changes)]
    alternatives: list[Alternative] = []
    span = int(p.steps[-1] - p.steps[0]) if p.steps.size else 0
    warmup = warmup_steps_for(onset_step, ctx, span) if blow_up else None
    if warmup is not None and warmup > ctx.warmup_steps:
        changes["schedule.warmup_steps"] = warmup
        parts.append(
            f"The blow-up came early (step {onset_step}): "
            f"{change_text('schedule.warmup_steps', warmup, ctx)} lets the weights settle "
            "before the full lr."
        )
    clip = clip_threshold(curves.grad, onset_step) if blow_up else None
    if clip is not None and (ctx.grad_clip_norm is None or clip < ctx.grad_clip_norm):
        changes["regularization.grad_clip_norm"] = clip
        parts.append(
            f"Set {change_text('regularization.grad_clip_norm', clip, ctx)}, the 95th "
            "percentile of grad_norm while it was still healthy, so one bad batch cannot "
            "throw the weights out."
        )
    momentum = _momentum_alternative(ctx, changes)
    if momentum is not None:
        alternatives.append(momentum)
    return " ".join(parts), changes, alternatives


def _at_once_finding(
    p: LossProfile,
    curves: Curves,
    ctx: RunContext,
    name: str,
    at_once: tuple[int, float, float, str],
    evidence: dict[str, Value],
) -> Finding:
    onset_step, _, decades, witness = at_once
    first = float(curves.tracks[name].values[0])  # the stored first point, quoted as such
    b = p.bins
    onset_bin = int(np.clip(np.searchsorted(b.lo, onset_step, side="right") - 1, 0, b.size - 1))
    level = p.raw(float(median(b.med)))
    evidence.update(
        {
            "start": first,
            "median_after": level,
            "decades_above_start": decades,
            "onset_step": onset_step,
        }
    )
    text, changes, alternatives = stability_changes(
        p, curves, ctx, onset_bin, onset_step, blow_up=True
    )
    return Finding(
        kind="divergence",
        severity="critical",
        confidence=confidence_from(decades / AT_ONCE_DECADES, running=ctx.running),
        step=onset_step,
        summary=(
            f"{name} was {fmt(first)} at step {int(p.steps[0])}; from step {onset_step}"
            f"{lr_text(p, curves, ctx, onset_bin)} it was above "
            f"{fmt(10**AT_ONCE_DECADES * first)} (10x that) and never came back: "
            f"{fmt(level)} (median) since, {fmt(10**decades)}x or more its first value on "
            f"{fmt(100 * AT_ONCE_SHARE)}% of its {witness}."
        ),
        evidence=evidence,
        recommendation=text,
        changes=changes,
        alternatives=tuple(alternatives),
    )


def divergence(curves: Curves, ctx: RunContext) -> Finding | None:
    """Non-finite loss, or a loss that rose far above its best and stayed there."""
    p = curves.train_log
    name = "train_loss"
    if p is None:
        v = curves.tracks.get("val_loss")
        if v is None:
            return None
        p, name = curves.profile_of("val_loss"), "val_loss"
    m = ctx.margin
    b = p.bins
    nonfinite, source = p.nonfinite, name
    if nonfinite is None and curves.val is not None and curves.val.nonfinite is not None:
        nonfinite, source = curves.val.nonfinite, "val_loss"

    evidence: dict[str, Value] = {"metric": name, "log_scale": p.log}
    if b.size == 0:
        if nonfinite is None:
            return None
        lowered = lr_changes(ctx, 0.1, ctx.lr)
        step, value = nonfinite
        return Finding(
            kind="divergence",
            severity="critical",
            confidence=0.99,
            step=step,
            summary=f"{source} is {fmt(value)} at step {step}, its first point(s).",
            evidence={**evidence, "nonfinite_step": step, "nonfinite_value": value},
            recommendation=f"Lower {changes_text(lowered, ctx) if lowered else 'the lr 10x'}: "
            "the loss was never finite, so there is no stretch to learn a safe lr from; "
            "add warmup and gradient clipping too.",
            changes=lowered,
        )

    best_i = int(np.argmin(b.med))
    best = float(b.med[best_i])
    k = max(2, b.size // 20)
    late = float(median(b.med[-k:]))
    drop = max(p.start - best, 0.0)
    rise = late - best
    sigma, sigma_m = p.noise(), p.noise_m()
    # Levels of bin medians are compared with the noise of bin medians measured between
    # neighbouring bins (it includes heavy tails and correlated steps), not derived from
    # one step's noise, which a loss bouncing every other step inflates far beyond it.
    sigma_level = global_diff_sigma(b.med)
    need = max(GIVE_BACK * drop, RISE_NOISE_MEDIAN * sigma_level)
    # Above where training started is judged with less slack than above the best: the
    # best is a minimum over many noisy bins (biased low), the start is not. Only for a
    # positive loss (log scale): a signed surrogate's start is no reference.
    above_start = p.log and late - p.start >= m * START_NOISE * sigma_level
    blew_up = (
        b.size >= 6
        and best_i < b.size - k
        and (rise >= m * need or above_start)
        and float(b.med[-1]) >= best + 0.5 * rise
    )
    swa = ctx.swa_start_step
    by_design = bool(p.by_design[best_i + 1 :].any()) or (
        swa is not None and int(b.lo[best_i]) < swa <= int(b.hi[-1])
    )
    if blew_up and by_design:
        # An lr rise (restart, cycle, SWA anneal) is meant to lift the loss; only a rise
        # that ends above where training started is a blow-up then.
        blew_up = late >= p.start + m * max(GIVE_BACK * drop, RISE_NOISE_MEDIAN * sigma_level)
    if nonfinite is None and not blew_up:
        at_once = _blown_up_at_once(p, curves)
        if at_once is None:
            return None
        return _at_once_finding(p, curves, ctx, name, at_once, evidence)

    # The rise begins where the curve leaves its best for good (a fifth of the drop above
    # it, or beyond its noise), not where the blow-up is already obvious.
    level = best + max(min(0.3 * max(rise, 0.0), 0.2 * drop), 4 * sigma_m)
    onset_bin = _rise_onset(b.med, best_i, level)
    rose_before = rise >= max(0.25 * drop, RISE_NOISE * sigma)
    if nonfinite is not None and not rose_before:
        onset_step = nonfinite[0]
        onset_bin = b.size - 1
    else:
        onset_step = int(b.lo[onset_bin])
    # Quoted beside a step: the stored points standing for the start and the best bin.
    track = curves.tracks[name]
    start_step, r_start = head_point(p, track)
    best_step, r_best = bin_point(p, track, best_i)
    r_late = p.raw(late)
    lr_note = lr_text(p, curves, ctx, onset_bin)
    evidence.update(
        {
            "start": r_start,
            "start_step": start_step,
            "best": r_best,
            "best_step": best_step,
            "last_smoothed": r_late,
            "onset_step": onset_step,
            "by_design_lr_rise": by_design,
        }
    )
    # The same judgement as the lr advice's "made no clear progress before the trouble".
    progressed = fell_clearly(p, max(onset_bin, best_i + 1))
    best_at = f"{fmt(r_best)} at step {best_step}"
    if progressed:
        path = f"{name} fell from {fmt(r_start)} at step {start_step} to {best_at}, then"
    elif r_best < r_start:
        path = (
            f"{name} made no clear progress from {fmt(r_start)} at step {start_step} (the "
            f"best it reached, {best_at}, is within its batch noise), and"
        )
    else:
        path = f"{name} made no clear progress from {fmt(r_start)} at step {start_step}, and"
    if nonfinite is not None:
        step, value = nonfinite
        evidence.update({"nonfinite_step": step, "nonfinite_value": value})
        summary = f"{path} {source} became {fmt(value)} at step {step}{lr_note}."
        severity: Severity = "critical"
        confidence = 0.99
    else:
        evidence["rise_over_drop"] = rise / drop if drop > 0 else None
        summary = f"{path} rose to {fmt(r_late)} (smoothed) by step {int(b.hi[-1])}{lr_note}"
        if progressed:
            summary += f", giving back {fmt(100 * rise / drop)}% of its progress"
        summary += "."
        severity = "critical" if late > p.start else "warning"
        confidence = confidence_from(rise / need if need > 0 else 10.0, running=ctx.running)
    text, changes, alternatives = stability_changes(
        p, curves, ctx, onset_bin, onset_step, blow_up=True
    )
    return Finding(
        kind="divergence",
        severity=severity,
        confidence=confidence,
        step=onset_step,
        summary=summary,
        evidence=evidence,
        recommendation=text,
        changes=changes,
        alternatives=tuple(alternatives),
    )
