"""Downsampling a metric series for charts without hiding what matters.

Equal-count buckets keep their lowest and highest point (so a one-step loss spike
survives), the first and last points are always kept, and the first point of every
non-finite run (where a loss turned NaN or Inf) is kept even if a bucket would have
dropped it: a diverged run must look diverged at any zoom level.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def downsample_indices(values: npt.NDArray[np.float64], max_points: int) -> IntArray:
    """Indices (ascending) of at most ``max_points`` points to keep from ``values``."""
    n = int(values.shape[0])
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)

    finite = np.isfinite(values)
    onsets = np.flatnonzero(~finite & np.concatenate(([True], finite[:-1])))
    # Onsets get at most a quarter of the budget, so a flapping series still shows its shape.
    onsets = onsets[: max_points // 4]
    n_buckets = max(1, (max_points - 2 - onsets.size) // 2)

    # Pad to a rectangle so argmin/argmax per bucket is one vectorised call.
    width = -(-n // n_buckets)
    padded = n_buckets * width
    low = np.full(padded, np.inf)
    high = np.full(padded, -np.inf)
    low[:n] = np.where(finite, values, np.inf)
    high[:n] = np.where(finite, values, -np.inf)
    base = np.arange(n_buckets, dtype=np.int64) * width
    mins = base + np.argmin(low.reshape(n_buckets, width), axis=1)
    maxs = base + np.argmax(high.reshape(n_buckets, width), axis=1)

    keep = np.concatenate(([0, n - 1], onsets, mins, maxs))
    keep = np.unique(keep[keep < n])
    if keep.size > max_points:  # rounding at the edges: drop from the middle evenly
        must = np.unique(np.concatenate(([0, n - 1], onsets)))
        rest = np.setdiff1d(keep, must, assume_unique=True)
        room = max_points - must.size
        pick = np.linspace(0, rest.size - 1, num=max(room, 0)).round().astype(np.int64)
        keep = np.unique(np.concatenate((must, rest[pick] if room > 0 else rest[:0])))
    return keep.astype(np.int64)
