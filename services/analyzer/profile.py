"""A loss curve summarised once for all rules: working scale, bins, noise, design windows.

- Working scale: log when the loss is positive and spans a decade or more (so noise that
  scales with the loss is even along the curve and a late rise is not dwarfed by the early
  drop), linear otherwise. Every threshold is then stated in units of the curve itself.
- Bins: up to 100 equal-count bins; each holds the median (robust to spikes) and the
  per-step noise from neighbour differences; the noise of a bin median follows from it.
- Design: bins where the lr rose (cyclic, warm restarts, an SWA anneal upward), and a
  short lag after, are "by design": a loss rise there is expected. A warmup's rise is not:
  it is there to keep the loss from rising. The window drops the warmup and the SWA
  phase, whose lr follows the schedule, not the optimization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curve_series import Track
from services.analyzer.stats import (
    MEDIAN_EFFICIENCY,
    BoolArray,
    FloatArray,
    IntArray,
    diff_sigma,
    global_diff_sigma,
    group_medians,
    isotonic_decreasing,
    median,
)

__all__ = [
    "Bins",
    "LossProfile",
    "build_profile",
    "design_mask",
    "lr_raised",
    "lr_rising",
    "make_bins",
    "use_log",
]

TARGET_BINS = 100
MIN_PER_BIN = 5
# A relative lr change below this is float noise or a rounding of the schedule.
LR_TOL = 0.01
# The loss answers an lr rise within a few percent of a run; this many bins (of 100) after
# a rise are still treated as by design.
LAG_FRACTION = 0.02
# The start: the median of the first 1% of points, at most this many.
HEAD_MAX = 20
# A settled start grows while the next stretch's median is within this many joint
# standard errors of the head's, up to this share of the run.
SETTLE_Z = 2.0
SETTLE_MAX = 0.1


@dataclass(frozen=True)
class Bins:
    lo: IntArray  # first and last step of each bin
    hi: IntArray
    count: IntArray
    med: FloatArray  # median value (working scale)
    sigma: FloatArray  # per-step noise sigma within the bin

    @property
    def size(self) -> int:
        return int(self.med.size)

    @property
    def center(self) -> FloatArray:
        return np.asarray(0.5 * (self.lo + self.hi), dtype=np.float64)

    @property
    def sigma_m(self) -> FloatArray:
        """Noise of each bin's median."""
        return np.asarray(MEDIAN_EFFICIENCY * self.sigma / np.sqrt(self.count), dtype=np.float64)


def make_bins(steps: IntArray, y: FloatArray) -> Bins:
    n = int(y.size)
    nb = max(1, min(TARGET_BINS, n // MIN_PER_BIN)) if n else 0
    if nb == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return Bins(empty_i, empty_i, empty_i, np.zeros(0), np.zeros(0))
    groups = (np.arange(n, dtype=np.int64) * nb) // n
    count = np.bincount(groups, minlength=nb).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    med = group_medians(y, groups, nb)
    sigma = diff_sigma(y, groups, nb)
    fallback = global_diff_sigma(y)
    sigma = np.where(np.isfinite(sigma), sigma, fallback)
    # A noiseless curve would make every change "significant"; a floor far below any real
    # noise, relative to the curve's own range, keeps ratios finite.
    span = float(np.max(med) - np.min(med)) if nb else 0.0
    floor = 1e-6 * span + 1e-12 * float(np.max(np.abs(med))) + 1e-300
    sigma = np.maximum(sigma, floor)
    return Bins(steps[starts], steps[starts + count - 1], count, med, sigma)


def lr_rising(lr: Track, bins: Bins) -> BoolArray:
    """Bins in which the lr rose above its value at the bin start, or jumped up into it."""
    n = lr.size
    if n == 0 or bins.size == 0:
        return np.zeros(bins.size, dtype=np.bool_)
    a = np.searchsorted(lr.steps, bins.lo, side="left")
    b = np.searchsorted(lr.steps, bins.hi, side="right")
    present = b > a
    vals = np.where(np.isfinite(lr.values), lr.values, 0.0)
    first = vals[np.minimum(a, n - 1)]
    last = vals[np.maximum(b - 1, 0)]
    peak = np.maximum.reduceat(vals, np.minimum(a, n - 1))
    rising = present & (peak > first * (1 + LR_TOL) + 1e-300)
    prev_last = np.concatenate(([np.inf], last[:-1]))
    rising |= present & (first > prev_last * (1 + LR_TOL) + 1e-300)
    return np.asarray(rising, dtype=np.bool_)


def _dilate(mask: BoolArray, lag: int) -> BoolArray:
    """True where `mask` was true in this bin or any of the `lag` bins before."""
    c = np.concatenate(([0], np.cumsum(mask)))
    idx = np.arange(mask.size)
    return np.asarray(c[idx + 1] - c[np.maximum(idx - lag, 0)] > 0, dtype=np.bool_)


@dataclass(frozen=True)
class LossProfile:
    steps: IntArray  # the finite prefix (up to the first NaN/Inf)
    y: FloatArray  # ... in the working scale
    log: bool
    bins: Bins
    window: BoolArray  # per bin: after the warmup, before SWA
    by_design: BoolArray  # per bin: the lr rose here or just before
    start: float  # level at the start (working scale)
    nonfinite: tuple[int, float] | None  # step and value of the first NaN/Inf

    @property
    def usable(self) -> BoolArray:
        return np.asarray(self.window & ~self.by_design, dtype=np.bool_)

    def raw(self, value: float) -> float:
        """A working-scale value back in the metric's own units."""
        return math.exp(value) if self.log else value

    def raw_values(self, index: IntArray) -> FloatArray:
        """The points at `index`, in the metric's own units."""
        picked = self.y[index]
        return np.asarray(np.exp(picked) if self.log else picked, dtype=np.float64)

    def noise_m(self, mask: BoolArray | None = None) -> float:
        """Typical noise of a bin median over `mask` (all bins if None or empty)."""
        sm = self.bins.sigma_m
        picked = sm[mask] if mask is not None and bool(mask.any()) else sm
        return float(median(picked)) if picked.size else 0.0

    def noise(self, mask: BoolArray | None = None) -> float:
        """Typical per-step noise over `mask`."""
        s = self.bins.sigma
        picked = s[mask] if mask is not None and bool(mask.any()) else s
        return float(median(picked)) if picked.size else 0.0

    def settled_start(self) -> tuple[float, float]:
        """The level at the start and its standard error, from the series' own noise.

        `start` is the median of the first 1% of points (at most 20): right for a quiet
        curve, but on a noisy one (small batches of a heavy-tailed loss) a median of six
        batches is off by a large share of the level. The head is doubled while the
        next stretch of as many points has the same median within their joint error
        (the loss has not yet moved by more than its noise), so it is as long as the
        curve's own noise lets it be without averaging in the fall that followed."""
        return settled_head(self.y)

    def iso(self, mask: BoolArray) -> FloatArray:
        """Non-increasing fit of the bin medians in `mask` (one value per selected bin)."""
        return isotonic_decreasing(self.bins.med[mask], self.bins.count[mask].astype(float))

    def segment_residuals(self, mask: BoolArray) -> FloatArray:
        """Bin median minus a non-increasing fit made separately on each run of `mask`.

        Runs are split where the lr rose, so a loss that resets with each warm restart
        is fitted cycle by cycle. NaN outside `mask` and on runs under 3 bins."""
        out = np.full(self.bins.size, np.nan)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
        for lo, hi in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            if hi - lo >= 3:
                fit = isotonic_decreasing(
                    self.bins.med[lo:hi], self.bins.count[lo:hi].astype(float)
                )
                out[lo:hi] = self.bins.med[lo:hi] - fit
        return out


def head_size(n: int) -> int:
    """Points that make the start: the first 1% (at most 20, at least 1)."""
    return max(1, min(HEAD_MAX, n // 100))


def settled_head(y: FloatArray) -> tuple[float, float]:
    """(level, standard error) of the start of `y`; see LossProfile.settled_start."""
    n = int(y.size)
    if n == 0:
        return math.nan, math.nan
    k = head_size(n)
    sigma = global_diff_sigma(y[: max(2 * k, 3)])
    level = float(median(y[:k]))
    # Never more than a tenth of the run: the start, not the run's typical level.
    while 2 * k <= SETTLE_MAX * n:
        nxt = float(median(y[k : 2 * k]))
        sigma = global_diff_sigma(y[: 2 * k])
        joint = MEDIAN_EFFICIENCY * sigma * math.sqrt(2.0 / k)
        if abs(nxt - level) > SETTLE_Z * joint:
            break
        k *= 2
        level = float(median(y[:k]))
    return level, MEDIAN_EFFICIENCY * sigma / math.sqrt(k)


def use_log(values: FloatArray) -> bool:
    """A positive series spanning a decade or more (5th to 95th percentile)."""
    if values.size < 2 or not bool(np.all(values > 0)):
        return False
    # A thousand evenly spaced points settle the percentiles as well as all of them.
    sample = values[:: max(1, values.size // 1000)]
    lo, hi = np.quantile(sample, [0.05, 0.95])
    return bool(hi >= 10.0 * lo)


def build_profile(
    track: Track,
    ctx: RunContext,
    lr: Track | None,
    scale: Literal["auto", "linear", "log"] = "auto",
) -> LossProfile:
    bad = track.first_nonfinite()
    finite = track.head(bad) if bad is not None else track
    nonfinite = None if bad is None else (int(track.steps[bad]), float(track.values[bad]))
    positive = finite.size > 0 and bool(np.all(finite.values > 0))
    log = (scale == "auto" and use_log(finite.values)) or (scale == "log" and positive)
    y = np.log(finite.values) if log else finite.values
    bins = make_bins(finite.steps, y)
    head = y[: head_size(int(y.size))]
    start = float(median(head)) if y.size else math.nan

    window = np.ones(bins.size, dtype=np.bool_)
    if ctx.warmup_steps > 0:
        window &= bins.lo >= ctx.warmup_steps
    if ctx.swa_start_step is not None:
        window &= bins.hi < ctx.swa_start_step
    by_design = design_mask(lr, bins, ctx)
    return LossProfile(finite.steps, y, log, bins, window, by_design, start, nonfinite)


def _lr_ends(lr: Track, bins: Bins) -> tuple[FloatArray, FloatArray]:
    """The lr in effect at each bin's first and last step."""
    vals = np.where(np.isfinite(lr.values), lr.values, 0.0)
    n = lr.size
    a = np.clip(np.searchsorted(lr.steps, bins.lo, side="right") - 1, 0, n - 1)
    b = np.clip(np.searchsorted(lr.steps, bins.hi, side="right") - 1, 0, n - 1)
    return vals[a], vals[b]


def _scheduled_rises(lr: Track, bins: Bins, ctx: RunContext) -> BoolArray:
    """Bins where the lr rose, outside the warmup."""
    rising = lr_rising(lr, bins)
    if ctx.warmup_steps > 0:
        # A warmup raises the lr so that the loss does *not* rise: a rise during it
        # says the target lr is too high, it is not a cycle's expected bump.
        rising &= bins.lo >= ctx.warmup_steps
    return rising


def design_mask(lr: Track | None, bins: Bins, ctx: RunContext) -> BoolArray:
    """Per bin: the lr rose here by design, or did within the lag before."""
    if lr is not None and lr.size:
        lag = max(1, round(LAG_FRACTION * bins.size))
        return _dilate(_scheduled_rises(lr, bins, ctx), lag)
    if ctx.cyclical:
        # The schedule raises the lr but we cannot see when: nothing can be ruled out.
        return np.ones(bins.size, dtype=np.bool_)
    return np.zeros(bins.size, dtype=np.bool_)


def lr_raised(lr: Track | None, bins: Bins, ctx: RunContext) -> BoolArray:
    """Per bin: the lr still stands above the level a scheduled rise lifted it from.

    design_mask covers a rise and a short lag after it, which is when the loss answers
    it. Single steps answer the lr in effect: a schedule that lifts the lr towards the
    edge of stability (a one-cycle peak, each warm restart, a cyclic peak) makes a hard
    batch's gradient large for as long as the lr stays above where it started, on the
    way down too. A warmup's rise is not counted (it is there to prevent that)."""
    design = design_mask(lr, bins, ctx)
    if lr is None or not lr.size or bins.size == 0:
        return design
    rising = _scheduled_rises(lr, bins, ctx)
    if not bool(rising.any()):
        return design
    first, last = _lr_ends(lr, bins)
    prev_last = np.concatenate(([first[0]], last[:-1]))
    began = rising & ~np.concatenate(([False], rising[:-1]))
    idx = np.arange(bins.size)
    which = np.maximum.accumulate(np.where(began, idx, -1))
    seen = which >= 0
    at = np.maximum(which, 0)
    base = np.minimum(first[at], prev_last[at])
    raised = seen & (last > base * (1 + LR_TOL) + 1e-300)
    return np.asarray(design | raised, dtype=np.bool_)
