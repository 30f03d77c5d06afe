"""What the analyzer accepts as a series, and the cleaned arrays rules start from.

A series is anything with `steps` and `values` (services.domain.records.Series) or a plain
`(steps, values)` pair of sequences or numpy arrays (taken without a copy). Points are put
in step order and a repeated step keeps its last value (a resumed trial overwrites the
steps it re-runs). Non-finite values are kept: they are the evidence of a divergence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from services.analyzer.stats import FloatArray, IntArray

__all__ = ["HasStepsValues", "SeriesLike", "Track", "to_track"]


class HasStepsValues(Protocol):
    @property
    def steps(self) -> Sequence[int]: ...

    @property
    def values(self) -> Sequence[float]: ...


SeriesLike = HasStepsValues | tuple[Sequence[int], Sequence[float]] | tuple[IntArray, FloatArray]


@dataclass(frozen=True)
class Track:
    """One series as arrays: steps ascending and unique, values as float64."""

    steps: IntArray
    values: FloatArray

    @property
    def size(self) -> int:
        return int(self.steps.size)

    def first_nonfinite(self) -> int | None:
        """Index of the first NaN/Inf value, or None."""
        bad = np.flatnonzero(~np.isfinite(self.values))
        return int(bad[0]) if bad.size else None

    def head(self, stop: int) -> Track:
        return Track(self.steps[:stop], self.values[:stop])

    def between(self, lo: float, hi: float) -> Track:
        """Points with lo <= step < hi."""
        a = int(np.searchsorted(self.steps, lo, side="left"))
        b = int(np.searchsorted(self.steps, hi, side="left"))
        return Track(self.steps[a:b], self.values[a:b])

    def value_at(self, step: float) -> float:
        """The value in effect at `step`: the last point at or before it (else the first)."""
        i = int(np.searchsorted(self.steps, step, side="right")) - 1
        return float(self.values[max(i, 0)])


def to_track(series: SeriesLike) -> Track:
    if isinstance(series, tuple):
        raw_steps, raw_values = series
    else:
        raw_steps, raw_values = series.steps, series.values
    steps = np.asarray(raw_steps, dtype=np.int64).reshape(-1)
    values = np.asarray(raw_values, dtype=np.float64).reshape(-1)
    if steps.size != values.size:
        raise ValueError(f"series has {steps.size} steps but {values.size} values")
    if steps.size > 1 and not bool(np.all(steps[1:] > steps[:-1])):
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        last = np.concatenate((steps[1:] != steps[:-1], [True]))
        steps, values = steps[last], values[last]
    return Track(steps, values)
