"""Oscillation: the loss bounces beyond what batch noise explains, without settling.

Two views, either suffices:
- train_loss, in its working scale (profile.py): bin medians swinging around a monotone
  fit by more than their own noise and a share of the drop; spikes back above where
  training started; or a per-step loss that flips above/below its level on most steps.
- val_loss (bounce.py): evaluations on a fixed set carry no batch noise, so jumps of
  tens of percent between evaluations are the weights being thrown around. This catches
  a too-high lr on heavy-tailed losses (MSE), whose per-step noise hides the bouncing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.analyzer.bounce import Bounce, val_bounce
from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import Alternative, Finding, Value, confidence_from
from services.analyzer.jitter import jitter
from services.analyzer.profile import LossProfile
from services.analyzer.recommend import fmt, lr_changes, switch_to_adam
from services.analyzer.rules_stability import lr_text, stability_changes
from services.analyzer.spec_text import changes_text

__all__ = ["oscillation"]

# Bin medians swing around a monotone fit by more than this many of their own noise, by
# a tenth of the whole drop, and by half the progress made meanwhile.
SWING_NOISE = 4.0
SWING_OF_DROP = 0.1
SWING_OF_PROGRESS = 0.5
# Spikes: single steps back above where training started (they undo the whole drop at
# once), beyond 6 noise sigmas, and too many for heavy-tailed batch noise.
SPIKE_OF_DROP = 1.0
MIN_SPIKES = 3
SPIKE_RATE = 0.003
# Alternation: the loss flips above/below its local level on most consecutive steps
# (independent batch noise flips on half), by a tenth of the drop or more: the lr makes
# the weights jump across a valley and back.
FLIP_SHARE = 0.75
FLIP_OF_DROP = 0.1
MIN_FLIP_POINTS = 50
MIN_BINS = 12
# val_loss: a fifth of the evaluations jump 20% (0.2 in log units) or more from their
# running median, and at least a twentieth of the run's own drop.
BOUNCE = 0.2
BOUNCE_OF_DROP = 0.05


@dataclass(frozen=True)
class _TrainSwing:
    onset_bin: int
    onset_step: int
    ratio: float  # how far past its threshold (>= 1)
    summary: str
    evidence: dict[str, Value]


def _train_swing(p: LossProfile, curves: Curves, ctx: RunContext) -> _TrainSwing | None:
    """The train_loss view; None when it shows no oscillation (or cannot be judged)."""
    b, usable = p.bins, p.usable
    if int(usable.sum()) < MIN_BINS:
        return None
    m = ctx.margin
    centers = b.center
    lo, hi = float(centers[usable][0]), float(centers[usable][-1])
    # Judge after the first third: the initial descent is fast and rarely the problem.
    later = usable & (centers >= lo + (hi - lo) / 3)
    residuals = p.segment_residuals(usable)
    region = later & np.isfinite(residuals)
    if int(region.sum()) < 6:
        return None
    fit = p.iso(usable)
    pos = np.flatnonzero(region[usable])
    progress = float(fit[pos[0]] - fit[-1])
    drop = max(float(fit[0] - fit[-1]), p.start - float(np.min(b.med)), 0.0)
    swing = float(np.quantile(np.abs(residuals[region]), 0.8))
    noise = p.noise_m(region)
    need = max(SWING_NOISE * noise, SWING_OF_DROP * drop, SWING_OF_PROGRESS * progress)
    jit = jitter(p, region, SPIKE_OF_DROP * drop)
    spikes = jit.spikes
    swings = swing >= m * need
    min_spikes = m * max(MIN_SPIKES, SPIKE_RATE * jit.points)
    spiky = spikes >= min_spikes and drop > 0
    flip_need = min(1.0, 0.5 + (FLIP_SHARE - 0.5) * m)
    flipping = (
        jit.points >= MIN_FLIP_POINTS
        and jit.flip_share >= flip_need
        and jit.amplitude >= m * FLIP_OF_DROP * drop
        and drop > 0
    )
    if not (swings or spiky or flipping):
        return None

    over = np.flatnonzero(usable & (np.abs(np.nan_to_num(residuals)) > 0.5 * need))
    onset_bin = int(over[0]) if over.size else int(np.flatnonzero(region)[0])
    onset_step = int(b.lo[onset_bin])
    if not swings and spiky and jit.first_spike_step is not None:
        onset_step = jit.first_spike_step
    q10, q90 = (p.raw(float(q)) for q in np.quantile(b.med[region], [0.1, 0.9]))
    from_lvl, to_lvl = p.raw(float(fit[pos[0]])), p.raw(float(fit[-1]))
    summary = (
        f"train_loss swings between {fmt(q10)} and {fmt(q90)} (smoothed) from step "
        f"{onset_step} to {int(b.hi[region][-1])}{lr_text(p, curves, ctx, onset_bin)}"
        f", {fmt(swing / noise)}x its batch noise, while its smoothed trend moved only "
        f"{fmt(from_lvl)} -> {fmt(to_lvl)}"
    )
    if spikes:
        summary += f"; {spikes} loss spikes"
    if flipping:
        summary += (
            f"; the per-step loss alternates above/below its level on "
            f"{fmt(100 * jit.flip_share)}% of steps"
        )
    ratio = max(swing / need if need > 0 else 0.0, spikes / min_spikes)
    if flipping:
        ratio = max(ratio, (jit.flip_share - 0.5) / (flip_need - 0.5))
    evidence: dict[str, Value] = {
        "log_scale": p.log,
        "swing": swing,
        "batch_noise": noise,
        "swing_over_noise": swing / noise if noise > 0 else None,
        "drop": drop,
        "progress_in_window": progress,
        "low_smoothed": q10,
        "high_smoothed": q90,
        "spikes": spikes,
        "flip_share": jit.flip_share,
    }
    return _TrainSwing(onset_bin, onset_step, ratio, summary, evidence)


def _bouncing(bounce: Bounce | None, ctx: RunContext) -> float:
    """How far val_loss's jumps pass their threshold (0 when they do not)."""
    if bounce is None:
        return 0.0
    need = ctx.margin * max(BOUNCE, BOUNCE_OF_DROP * bounce.drop)
    return bounce.amplitude / need if bounce.amplitude >= need else 0.0


def oscillation(curves: Curves, ctx: RunContext) -> Finding | None:
    """The loss swings up and down beyond its batch noise without settling."""
    p = curves.train
    train = _train_swing(p, curves, ctx) if p is not None else None
    bounce = val_bounce(curves, ctx)
    val_ratio = _bouncing(bounce, ctx)
    if train is None and val_ratio == 0.0:
        return None
    parts: list[str] = []
    evidence: dict[str, Value] = {"metric": "train_loss" if train else "val_loss"}
    ratio, onset_step = 0.0, None
    if train is not None:
        parts.append(train.summary)
        evidence.update(train.evidence)
        ratio, onset_step = train.ratio, train.onset_step
    if bounce is not None and val_ratio > 0:
        pct = 100 * np.expm1(bounce.amplitude)
        parts.append(
            f"val_loss jumps {fmt(pct)}% or more away from its running median on a fifth of "
            f"the {bounce.evals} evaluations from step {bounce.onset_step} to "
            f"{bounce.last_step}, where a settling run moves smoothly"
        )
        evidence["val_jump_log"] = bounce.amplitude
        ratio = max(ratio, val_ratio)
        onset_step = bounce.onset_step if onset_step is None else min(onset_step, bounce.onset_step)
    assert onset_step is not None  # one of the two views fired
    if p is not None and p.bins.size:
        onset_bin = int(np.clip(np.searchsorted(p.bins.lo, onset_step, "right") - 1, 0, None))
        text, changes, alternatives = stability_changes(
            p, curves, ctx, onset_bin, onset_step, blow_up=False
        )
    else:
        changes, alternatives = lr_changes(ctx, 0.5, ctx.lr), []
        what = changes_text(changes, ctx) if changes else "the lr about 2x"
        text = f"Lower {what}: the evaluations jump between steps instead of settling."
    if ctx.batch_size:
        double: dict[str, Value] = {"batch_size": 2 * ctx.batch_size}
        alternatives.append(
            Alternative(
                f"Double {changes_text(double, ctx)}: it halves the gradient noise variance "
                "that drives the bouncing.",
                double,
            )
        )
    if ctx.optimizer == "sgd":
        alternatives.append(switch_to_adam(ctx, "Adam damps the step of noisy coordinates"))
    return Finding(
        kind="oscillation",
        severity="warning",
        confidence=confidence_from(ratio, running=ctx.running),
        step=onset_step,
        summary="; ".join(parts) + ".",
        evidence=evidence,
        recommendation=text,
        changes=changes,
        alternatives=tuple(alternatives),
    )
