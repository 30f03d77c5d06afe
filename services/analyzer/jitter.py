"""Per-step structure of a loss curve that bin medians smooth away: spikes, alternation.

Both compare each point with its bin's median. Batch noise is independent from step to
step and, for a positive loss, roughly log-normal, so tails are judged on log residuals
where the loss is positive: heavy-tailed but ordinary batches are not spikes there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.analyzer.profile import LossProfile
from services.analyzer.stats import BoolArray, IntArray, diff_sigma, median

__all__ = ["Jitter", "jitter"]

SPIKE_NOISE = 6.0


@dataclass(frozen=True)
class Jitter:
    spikes: int  # separate runs of points far above their bin median
    first_spike_step: int | None
    flip_share: float  # share of neighbour pairs whose residuals have opposite signs
    amplitude: float  # robust sd of the residuals (working scale)
    points: int


def jitter(p: LossProfile, region: BoolArray, spike_level: float) -> Jitter:
    """Spikes higher than `spike_level` (working scale) and beyond 6 noise sigmas, and the
    alternation of residuals, over the points of the bins in `region`."""
    b = p.bins
    groups = np.repeat(np.arange(b.size), b.count)
    excess = p.y - b.med[groups]
    inside = region[groups]
    if p.log or bool(np.all(p.y > 0)):
        logs = p.y if p.log else np.log(p.y)
        log_med = b.med if p.log else np.log(b.med)
        log_sigma = diff_sigma(logs, groups, b.size)
        log_sigma = np.where(np.isfinite(log_sigma), log_sigma, np.inf)
        tail = logs - log_med[groups] > SPIKE_NOISE * log_sigma[groups]
    else:
        tail = excess > SPIKE_NOISE * b.sigma[groups]
    hit = inside & tail & (excess > spike_level)
    onsets = np.flatnonzero(hit & ~np.concatenate(([False], hit[:-1])))
    first = int(p.steps[onsets[0]]) if onsets.size else None

    pairs = inside[1:] & inside[:-1]
    if not _evenly_spaced(p.steps):
        # A downsampled series keeps each bucket's lowest and highest point, so its
        # neighbours alternate by construction: alternation means nothing there.
        pairs = np.zeros_like(pairs)
    signs = np.sign(excess)
    nonzero = pairs & (signs[1:] != 0) & (signs[:-1] != 0)
    n_pairs = int(nonzero.sum())
    flips = float(np.mean(signs[1:][nonzero] != signs[:-1][nonzero])) if n_pairs else 0.5
    r = excess[inside]
    amplitude = float(1.4826 * median(np.abs(r))) if r.size else 0.0
    return Jitter(int(onsets.size), first, flips, amplitude, int(inside.sum()))


def _evenly_spaced(steps: IntArray) -> bool:
    """Logged at a fixed interval (every step, or every k): most gaps are the same."""
    if steps.size < 3:
        return True
    gaps = np.diff(steps)
    return bool(np.mean(gaps == median(gaps)) >= 0.9)
