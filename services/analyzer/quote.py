"""Stored points for a summary to quote beside a step.

The rules judge levels (bin medians, running medians, fits); none of them is a value the
run logged, and quoted "at step N" such a level reads as the value stored there, so a user
who checks the run finds another number. A level tied to a step is quoted as the stored
point at the median of the stretch it summarises instead (the lower median when the count
is even): a real (step, value) pair that stands for the level.
"""

from __future__ import annotations

import numpy as np

from services.analyzer.curve_series import Track
from services.analyzer.profile import LossProfile, head_size

__all__ = ["bin_point", "head_point", "median_point"]


def median_point(track: Track, lo: int, hi: int) -> tuple[int, float]:
    """(step, stored value) at the lower median of the track's points lo..hi-1."""
    values = track.values[lo:hi]
    order = np.argsort(values, kind="stable")
    i = lo + int(order[(values.size - 1) // 2])
    return int(track.steps[i]), float(track.values[i])


def bin_point(p: LossProfile, track: Track, i: int) -> tuple[int, float]:
    """The stored point standing for bin `i` of `p`, a profile built from `track`."""
    start = int(np.sum(p.bins.count[:i]))
    return median_point(track, start, start + int(p.bins.count[i]))


def head_point(p: LossProfile, track: Track) -> tuple[int, float]:
    """The stored point standing for `p.start` (the median of the first points)."""
    return median_point(track, 0, head_size(int(p.y.size)))
