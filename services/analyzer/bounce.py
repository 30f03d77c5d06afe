"""How far val_loss jumps away from its own local level: instability seen in evaluations.

An evaluation runs on a fixed held-out set, so it carries no batch noise: between two
evaluations val_loss moves only as the weights move. A healthy run's val_loss is smooth
(a running median of five evaluations follows it closely, and a monotone stretch exactly);
an lr too high throws the weights across the valley and back, and val_loss jumps by tens
of percent from one evaluation to the next. Jumps are measured as relative changes (log
scale; a val_loss that is not positive throughout is not judged), so they mean the same
at any loss scale. Evaluations in the warmup, in the SWA phase and while a schedule holds
the lr above the level a rise lifted it from (a cycle, a warm restart, a one-cycle peak
and its anneal: profile.lr_raised) are left out: a high lr by design moves the weights
far, and val_loss with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curves import MAX_VAL_POINTS, Curves
from services.analyzer.profile import lr_raised, make_bins
from services.analyzer.stats import BoolArray, IntArray, median, running_median

__all__ = ["Bounce", "val_bounce"]

MIN_EVALS = 10
WINDOW = 5
QUANTILE = 0.8


@dataclass(frozen=True)
class Bounce:
    amplitude: float  # the QUANTILE of |relative jump| from the running median
    drop: float  # relative drop of the smoothed val_loss from its start to its minimum
    onset_step: int  # the first evaluation jumping by more than half the amplitude
    last_step: int
    evals: int  # evaluations judged


def val_bounce(curves: Curves, ctx: RunContext) -> Bounce | None:
    track = curves.track("val_loss")
    if track is None:
        return None
    bad = track.first_nonfinite()
    if bad is not None:
        track = track.head(bad)
    steps, values = track.steps, track.values
    if values.size < MIN_EVALS:
        return None
    if not bool(np.all(values > 0)):
        # A relative jump needs a positive level: a val_loss that reaches 0 (a solved
        # episode) or goes negative is a score, whose jumps say nothing about the lr.
        return None
    y = np.log(values)
    if y.size > MAX_VAL_POINTS:
        # Evaluated (nearly) every step: judge bin medians, as the other val views do.
        bins = make_bins(steps, y)
        steps, y = np.asarray(bins.lo + (bins.hi - bins.lo) // 2, dtype=np.int64), bins.med
    keep = _judged(steps, curves, ctx)
    if int(keep.sum()) < MIN_EVALS:
        return None
    smooth = running_median(y, WINDOW)
    jumps = np.abs(y - smooth)[keep]
    amplitude = float(np.quantile(jumps, QUANTILE))
    start = float(median(y[: min(2, y.size)]))
    drop = max(start - float(np.min(smooth)), 0.0)
    kept_steps = steps[keep]
    over = np.flatnonzero(jumps > 0.5 * amplitude)
    onset = int(kept_steps[over[0]]) if over.size else int(kept_steps[0])
    return Bounce(amplitude, drop, onset, int(kept_steps[-1]), int(keep.sum()))


def _judged(steps: IntArray, curves: Curves, ctx: RunContext) -> BoolArray:
    """Evaluations outside warmup, SWA and the bins where a schedule holds the lr raised."""
    keep = steps >= ctx.warmup_steps
    if ctx.swa_start_step is not None:
        keep &= steps < ctx.swa_start_step
    p = curves.train
    if p is not None and p.bins.size:
        b = np.clip(np.searchsorted(p.bins.lo, steps, side="right") - 1, 0, p.bins.size - 1)
        keep &= ~lr_raised(curves.lr, p.bins, ctx)[b]
    elif ctx.cyclical:
        keep &= False  # the lr rises by design but we cannot see when
    return np.asarray(keep, dtype=np.bool_)
