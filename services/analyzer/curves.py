"""The run's series, cleaned once, with the views the rules share (built lazily, cached)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from services.analyzer.context import RunContext
from services.analyzer.curve_series import SeriesLike, Track, to_track
from services.analyzer.layers import LAYER_PREFIX, LayerGap, layer_gap, layer_tracks
from services.analyzer.profile import Bins, LossProfile, build_profile, make_bins, use_log
from services.analyzer.stats import (
    FloatArray,
    IntArray,
    global_curvature_sigma,
    median,
    running_median,
)

__all__ = ["MAX_VAL_POINTS", "METRICS", "Curves", "GradCurve", "ValCurve"]

# The metric names of the contract (README: How a trial runs) that the rules read; and
# per-layer gradient norms, grad_norm/<index>.<module> (services.analyzer.layers).
METRICS = (
    "train_loss",
    "val_loss",
    "val_accuracy",
    "lr",
    "grad_norm",
    "swa_val_loss",
    "sharpness",
)

# Evaluations beyond this many are reduced to bin medians before smoothing.
MAX_VAL_POINTS = 400


@dataclass(frozen=True)
class ValCurve:
    """An evaluation series (sparse): smoothed with a short running median."""

    steps: IntArray
    y: FloatArray  # working scale, finite prefix
    smooth: FloatArray
    sigma: float  # noise of one evaluation
    log: bool
    start: float
    nonfinite: tuple[int, float] | None

    @property
    def size(self) -> int:
        return int(self.y.size)

    def raw(self, value: float) -> float:
        return math.exp(value) if self.log else value

    def before(self, step: float) -> ValCurve:
        """The points strictly before `step` (used to leave out the SWA phase)."""
        k = int(np.searchsorted(self.steps, step, side="left"))
        return ValCurve(
            self.steps[:k], self.y[:k], self.smooth[:k], self.sigma, self.log, self.start, None
        )


@dataclass(frozen=True)
class GradCurve:
    """grad_norm in decades (log10): norms are judged by ratios, whatever the loss scale."""

    track: Track  # finite values, raw
    bins: Bins  # of log10 of the positive values
    zero_fraction_late: float  # share of exact zeros in the last quarter
    nonfinite: tuple[int, float] | None


def _val_curve(track: Track, scale: Literal["auto", "linear", "log"]) -> ValCurve:
    bad = track.first_nonfinite()
    finite = track.head(bad) if bad is not None else track
    nonfinite = None if bad is None else (int(track.steps[bad]), float(track.values[bad]))
    if finite.size == 0:
        return ValCurve(finite.steps, finite.values, finite.values, 0.0, False, math.nan, nonfinite)
    values = finite.values
    # "log": whenever positive (to judge a rise); "auto": when it also spans a decade.
    positive = bool(np.all(values > 0))
    log = positive if scale == "log" else scale == "auto" and use_log(values)
    y = np.log(values) if log else values
    steps = finite.steps
    if y.size > MAX_VAL_POINTS:
        bins = make_bins(steps, y)
        steps, y = np.asarray(bins.lo + (bins.hi - bins.lo) // 2, dtype=np.int64), bins.med
    smooth = running_median(y, 5 if y.size >= 15 else 3)
    span = float(np.max(y) - np.min(y))
    sigma = max(global_curvature_sigma(y), 1e-6 * span + 1e-12 * float(np.max(np.abs(y))) + 1e-300)
    start = float(median(y[: min(2, y.size)]))
    return ValCurve(steps, y, smooth, sigma, log, start, nonfinite)


class Curves:
    """Tracks by metric name plus the cached loss profiles and evaluation curves."""

    def __init__(self, series: Mapping[str, SeriesLike], context: RunContext) -> None:
        self.context = context
        self.tracks: dict[str, Track] = {}
        names = [*METRICS, *(n for n in series if n.startswith(LAYER_PREFIX))]
        for name in names:
            if name in series:
                track = to_track(series[name])
                if track.size:
                    self.tracks[name] = track

    def track(self, name: str) -> Track | None:
        return self.tracks.get(name)

    def profile_of(self, name: str) -> LossProfile:
        """A loss profile of any logged loss series (uncached; train has its own)."""
        return build_profile(self.tracks[name], self.context, self.lr)

    @property
    def lr(self) -> Track | None:
        return self.tracks.get("lr")

    @cached_property
    def train(self) -> LossProfile | None:
        """train_loss in its working scale (log when it spans decades)."""
        track = self.tracks.get("train_loss")
        return None if track is None else build_profile(track, self.context, self.lr)

    @cached_property
    def train_linear(self) -> LossProfile | None:
        """train_loss on a linear scale: for judging shape (slowing down) and level."""
        p = self.train
        if p is None or not p.log:
            return p
        track = self.tracks["train_loss"]
        return build_profile(track, self.context, self.lr, scale="linear")

    @cached_property
    def train_log(self) -> LossProfile | None:
        """train_loss on a log scale whenever it is positive: for judging how far it rose.

        A rise is a ratio (2x, 10x) and batch noise grows with the loss, so a loss that
        climbed from 3 to 15 is judged in log units even though it spans under a decade."""
        p = self.train
        if p is None or p.log:
            return p
        return build_profile(self.tracks["train_loss"], self.context, self.lr, scale="log")

    @cached_property
    def val(self) -> ValCurve | None:
        track = self.tracks.get("val_loss")
        return None if track is None else _val_curve(track, "auto")

    @cached_property
    def val_linear(self) -> ValCurve | None:
        v = self.val
        if v is None or not v.log:
            return v
        return _val_curve(self.tracks["val_loss"], "linear")

    @cached_property
    def val_log(self) -> ValCurve | None:
        """val_loss on a log scale whenever it is positive: for judging how far it rose.

        As for train_log: a rise is a ratio, and the evaluation noise of a positive loss
        grows with its level (a heavy-tailed MSE on a small set most of all), so a rise
        from a low minimum is judged against the noise at that level, not the noise of
        the higher stretch after it."""
        v = self.val
        if v is None or v.log:
            return v
        return _val_curve(self.tracks["val_loss"], "log")

    @cached_property
    def layers(self) -> LayerGap | None:
        """The first and last layers' gradient norms compared (None unless logged)."""
        return layer_gap(layer_tracks(self.tracks))

    @cached_property
    def grad(self) -> GradCurve | None:
        track = self.tracks.get("grad_norm")
        if track is None:
            return None
        finite = np.isfinite(track.values)
        bad = np.flatnonzero(~finite)
        nonfinite = None
        if bad.size:
            nonfinite = (int(track.steps[bad[0]]), float(track.values[bad[0]]))
        clean = Track(track.steps[finite], track.values[finite])
        positive = clean.values > 0
        logs = np.log10(clean.values[positive])
        bins = make_bins(clean.steps[positive], logs)
        quarter = clean.values[clean.size - max(1, clean.size // 4) :]
        zeros = float(np.mean(quarter == 0)) if quarter.size else 0.0
        return GradCurve(clean, bins, zeros, nonfinite)
