"""Concrete values for recommendations, taken from the series where they support one.

Lr advice is a factor on the lr that was in effect (the lr series, which already includes
warmup, schedule and batch-size scaling); `lr_changes` maps that factor onto the spec's
own lr fields, so the same relative cut applies whatever the schedule does to the base.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curve_series import Track
from services.analyzer.curves import GradCurve
from services.analyzer.findings import Alternative, Value
from services.analyzer.profile import LossProfile
from services.analyzer.spec_text import changes_text, fmt
from services.analyzer.stats import median

__all__ = [
    "HEAVY_MOMENTUM",
    "LrAdvice",
    "clip_threshold",
    "fell_clearly",
    "fmt",
    "healthy_grad_end",
    "lower_lr_advice",
    "lr_changes",
    "nice",
    "sig",
    "switch_to_adam",
    "warmup_steps_for",
    "weight_decay_change",
]

_NICE = (1.0, 2.0, 3.0, 5.0, 10.0)
_LR_GRID = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
# The loss made progress: its lowest bin median sits this many bin-median noises below
# its start (about 3 standard errors of their difference).
PROGRESS_NOISE = 4.0
# grad_norm's healthy stretch ends where a bin median stands a decade above the lowest
# one before it (the unit the gradient rules use for an explosion) or a norm is not
# finite. A clip is the 95th percentile of the norms there, and never more than 10x
# their median: a threshold far above every ordinary step would clip nothing.
TROUBLE_DECADES = 1.0
CLIP_QUANTILE = 95.0
CLIP_OVER_MEDIAN = 10.0
MIN_HEALTHY = 10
# The usual momentum: what plain SGD gets, and what heavier momentum comes back to (above
# it the effective step lr / (1 - momentum) grows fast).
HEAVY_MOMENTUM = 0.9


def sig(x: float, digits: int = 2) -> float:
    """`x` rounded to `digits` significant digits."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")


def nice(x: float, *, below: float | None = None, above: float | None = None) -> float:
    """The 1-2-3-5 value nearest to `x` in log terms, strictly below/above a bound if given
    (so a "lower the lr" never rounds back to the lr it lowers)."""
    if x <= 0 or not math.isfinite(x):
        return x
    exp = math.floor(math.log10(x))
    candidates = [m * 10.0 ** (exp + d) for d in (-1, 0, 1) for m in _NICE]
    if below is not None:
        candidates = [c for c in candidates if c < below * (1 - 1e-9)] or [x]
    if above is not None:
        candidates = [c for c in candidates if c > above * (1 + 1e-9)] or [x]
    best = min(candidates, key=lambda c: abs(math.log(c / x)))
    return float(f"{best:.6g}")


def _lr_value(lr: float, factor: float) -> float:
    """`lr * factor` on a readable grid, rounded toward the old lr by at most 5%, and
    never back onto the old lr."""
    target = lr * factor
    exp = math.floor(math.log10(target))
    grid = [m * 10.0 ** (exp + d) for d in (-1, 0, 1) for m in _LR_GRID]
    if factor < 1:
        picked = max((g for g in grid if g <= target * 1.05 and g < lr), default=target)
    else:
        picked = min((g for g in grid if g >= target / 1.05 and g > lr), default=target)
    return float(f"{picked:.6g}")


def lr_changes(ctx: RunContext, factor: float, observed: float | None) -> dict[str, Value]:
    """Spec changes that multiply the run's lr by `factor` ({} when no lr is known)."""
    changes: dict[str, Value] = {}
    if ctx.schedule in ("cyclic", "one_cycle") and ctx.max_lr is not None:
        # The peak is what hurts (or helps); a cyclic base moves with it to keep the range.
        changes["schedule.max_lr"] = _lr_value(ctx.max_lr, factor)
        if ctx.schedule == "cyclic" and ctx.lr is not None:
            changes["optimizer.lr"] = _lr_value(ctx.lr, factor)
        return changes
    base = ctx.lr if ctx.lr is not None else observed
    if base is not None and base > 0:
        changes["optimizer.lr"] = _lr_value(base, factor)
    return changes


@dataclass(frozen=True)
class LrAdvice:
    factor: float  # the suggested lr over the lr in effect where the problem began
    observed: float | None  # that lr (from the lr series, else the spec's)
    peak: float | None  # the highest lr of the run: what the spec's base lr produced
    reason: str

    @property
    def target(self) -> float | None:
        return None if self.observed is None else self.observed * self.factor

    @property
    def base(self) -> float | None:
        """The lr the change scales when the spec's own lr is unknown."""
        return self.peak if self.target is not None and self.peak else self.observed

    def changes(self, ctx: RunContext) -> dict[str, Value]:
        """The spec change: the base lr scaled so that the schedule's peak lands on the
        target (a warmup ramp or a decay keeps its shape around the new base)."""
        target, peak = self.target, self.peak
        if target is None or not peak:
            return lr_changes(ctx, self.factor, self.observed)
        return lr_changes(ctx, min(target / peak, 1.0 if self.factor < 1 else np.inf), peak)

    def text(self, ctx: RunContext, changes: Mapping[str, Value]) -> str:
        """The advice as a sentence, its values read from `changes` (this advice's)."""
        lr = {k: v for k, v in changes.items() if k in ("optimizer.lr", "schedule.max_lr")}
        if not lr:
            return f"Lower the lr about {fmt(1 / self.factor)}x: {self.reason}."
        return f"Lower {changes_text(lr, ctx, self.base)}: {self.reason}."


def _bin_lrs(lr: Track, centers: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(lr.steps, centers, side="right") - 1
    return np.asarray(lr.values[np.clip(idx, 0, lr.size - 1)], dtype=np.float64)


def fell_clearly(p: LossProfile, end_bin: int) -> bool:
    """The loss fell clearly below its start in the bins before `end_bin`.

    One judgement for a summary ("fell from ... to ...") and the advice beside it ("the
    loss made no clear progress"), so the two cannot contradict each other."""
    b = p.bins
    end_bin = min(end_bin, b.size)
    if end_bin < 1:
        return False
    # The noise of those bins: a blow-up after them is no measure of their own noise.
    before = np.arange(b.size) < end_bin
    return float(p.start - np.min(b.med[:end_bin])) > PROGRESS_NOISE * p.noise_m(before)


def lower_lr_advice(p: LossProfile, lr: Track | None, onset_bin: int, ctx: RunContext) -> LrAdvice:
    """How far to lower the lr, from where the loss was still falling before `onset_bin`.

    - The loss kept making new lows at a lower lr than at the onset: use that lr (at
      most half the onset lr).
    - It fell at the same lr and then turned: the lr sits at the edge of stability; a 3x
      cut leaves a margin.
    - It did not clearly fall before the onset, or the onset came too early to tell: an
      order of magnitude, the standard first step.
    """
    b = p.bins
    onset_bin = max(0, min(onset_bin, b.size - 1)) if b.size else 0
    observed, peak = ctx.lr, ctx.lr
    if lr is not None and lr.size and b.size:
        observed = lr.value_at(float(b.lo[onset_bin]))
        finite = lr.values[np.isfinite(lr.values)]
        peak = float(np.max(finite)) if finite.size else observed
    made_progress = False
    if b.size and onset_bin >= 2:
        before = b.med[:onset_bin]
        lows = np.flatnonzero(before[1:] < np.minimum.accumulate(before)[:-1]) + 1
        made_progress = fell_clearly(p, onset_bin)
        # "Still falling at a lower lr" needs a fall to speak of (the summary's judgement).
        if made_progress and lr is not None and lr.size and lows.size and observed:
            falling_lrs = _bin_lrs(lr, b.center[lows])
            ok = float(np.max(falling_lrs))
            if 0 < ok < 0.8 * observed:
                factor = min(ok / observed, 0.5)
                step = int(b.lo[lows[int(np.argmax(falling_lrs))]])
                return LrAdvice(
                    factor,
                    observed,
                    peak,
                    f"the loss was still falling at lr {fmt(ok)} (step {step}) and turned "
                    f"up at lr {fmt(observed)}",
                )
    at = f" at lr {fmt(observed)}" if observed else ""
    # Too few points before the onset to say whether the loss was falling there.
    unknown = not (b.size and onset_bin >= 2)
    if made_progress:
        return LrAdvice(
            1 / 3,
            observed,
            peak,
            f"the loss fell{at} and then turned up at the same lr: it sits at the edge of "
            "stability, and a cut of about a third leaves a margin",
        )
    why = (
        f"the trouble began with the run{at}, leaving no stretch before it to learn a safe lr from"
        if unknown
        else f"the loss made no clear progress before the trouble began{at}"
    )
    return LrAdvice(
        0.1, observed, peak, f"{why}; an order of magnitude lower is the standard first step"
    )


def healthy_grad_end(grad: GradCurve, before_step: float) -> float:
    """The step where grad_norm's healthy stretch ends: at `before_step` at the latest,
    at its first non-finite norm, or where a bin median stands TROUBLE_DECADES above the
    lowest one before it (an explosion that began before the loss showed it)."""
    end = float(before_step)
    if grad.nonfinite is not None:
        end = min(end, float(grad.nonfinite[0]))
    b = grad.bins
    if b.size:
        risen = np.flatnonzero(b.med - np.minimum.accumulate(b.med) >= TROUBLE_DECADES)
        if risen.size:
            end = min(end, float(b.lo[risen[0]]))
    return end


def clip_threshold(grad: GradCurve | None, before_step: float) -> float | None:
    """A clipping threshold from the healthy stretch of grad_norm (None: too short)."""
    if grad is None:
        return None
    track = grad.track  # finite norms only
    healthy = track.values[track.steps < healthy_grad_end(grad, before_step)]
    healthy = healthy[healthy > 0]
    if healthy.size < MIN_HEALTHY:
        return None
    high = float(np.percentile(healthy, CLIP_QUANTILE))
    return sig(min(high, CLIP_OVER_MEDIAN * float(median(healthy))))


def warmup_steps_for(onset_step: int, ctx: RunContext, span: int) -> int | None:
    """A warmup long enough to cover an early blow-up (None if the blow-up came late)."""
    budget = ctx.total_steps or span
    if budget <= 0 or onset_step > 0.25 * budget:
        return None
    steps = max(2 * onset_step, round(0.02 * budget), 2 * ctx.warmup_steps, 10)
    return int(sig(min(steps, max(round(0.2 * budget), 1)), 2))


def weight_decay_change(ctx: RunContext) -> tuple[str, float]:
    """Where and what weight decay to set: 5x the current, or a common default."""
    if ctx.weight_decay:
        return ctx.weight_decay_path, nice(5 * ctx.weight_decay, above=ctx.weight_decay)
    if ctx.weight_decay_path == "optimizer.weight_decay":
        return ctx.weight_decay_path, 0.05
    return ctx.weight_decay_path, 5e-4 if ctx.optimizer in (None, "sgd") else 1e-4


def switch_to_adam(ctx: RunContext, why: str) -> Alternative:
    """Adam at its usual lr: `why` says what it does for this finding."""
    adam: dict[str, Value] = {"optimizer.name": "adam", "optimizer.lr": 1e-3}
    return Alternative(f"Set {changes_text(adam, ctx)}: {why}.", adam)
