"""Per-layer gradient norms: the input side against the output side, in decades.

A run may log `grad_norm/<index>.<module>` per layer (lrlab's runner does, and so does the
SDK's `lrlab.torch.grad_norms`): `index` is the layer's position from the input (0) to
the output, so the first layer is the one of lowest index and the last of highest, however
the modules are named. Series without an index are left out: their order is unknown.

The gap is log10(first layer's norm / last layer's norm) at the steps both logged, binned
like every other series. Backpropagation multiplies the gradient by each layer's Jacobian
on its way to the input: when those factors are below 1 (saturating sigmoid/tanh units,
weights initialized too small) the input side's gradient is orders of magnitude below the
output side's and the gap is very negative; when they are above 1 it grows the other way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.analyzer.curve_series import Track
from services.analyzer.profile import Bins, make_bins
from services.analyzer.stats import FloatArray, median

__all__ = ["LAYER_NAME", "LAYER_PREFIX", "LayerGap", "layer_gap", "layer_tracks", "rise_se"]

LAYER_PREFIX = "grad_norm/"
LAYER_NAME = re.compile(r"grad_norm/(\d+)\.(.+)")
# Fewer common points than this and the gap has no trend worth reading.
MIN_POINTS = 10


@dataclass(frozen=True)
class LayerGap:
    """The first (input-side) and last (output-side) layers and the gap between them."""

    first: str  # metric names
    last: str
    layers: int  # how many indexed layer series the run logged
    bins: Bins  # of log10(first / last)
    first_bins: Bins  # of log10(first) alone, at the same steps
    early: float  # median gap over the first fifth of the bins, decades
    late: float  # median gap over the last tenth

    @property
    def trend(self) -> float:
        """How far the gap moved from early on to the end, in decades (+: input side up)."""
        return self.late - self.early


def layer_tracks(tracks: Mapping[str, Track]) -> dict[int, tuple[str, Track]]:
    """The indexed per-layer series by layer index."""
    out: dict[int, tuple[str, Track]] = {}
    for name, track in tracks.items():
        match = LAYER_NAME.fullmatch(name)
        if match is not None and track.size:
            out[int(match.group(1))] = (name, track)
    return out


def layer_gap(layers: Mapping[int, tuple[str, Track]]) -> LayerGap | None:
    """The gap between the lowest- and highest-index layers (None: fewer than two layers,
    or too few steps where both norms are finite and positive)."""
    if len(layers) < 2:
        return None
    first_name, first = layers[min(layers)]
    last_name, last = layers[max(layers)]
    steps, i, j = np.intersect1d(first.steps, last.steps, return_indices=True)
    a, b = first.values[i], last.values[j]
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if int(ok.sum()) < MIN_POINTS:
        return None
    steps, log_a, log_b = steps[ok], np.log10(a[ok]), np.log10(b[ok])
    bins = make_bins(steps, log_a - log_b)
    early = float(median(bins.med[: max(1, bins.size // 5)]))
    late = float(median(bins.med[-max(1, bins.size // 10) :]))
    return LayerGap(first_name, last_name, len(layers), bins, make_bins(steps, log_a), early, late)


def rise_se(b: Bins) -> FloatArray:
    """Per bin: the standard error of its median minus the lowest bin median so far (a
    rise is a difference of two medians, each with its own noise)."""
    sm = b.sigma_m
    lowest = np.minimum.accumulate(b.med)
    at = np.maximum.accumulate(np.where(b.med == lowest, np.arange(b.size), 0))
    return np.asarray(np.sqrt(sm**2 + sm[at] ** 2), dtype=np.float64)
