"""What each kind needs to be true at the least (docs/analyzer.md, "The kinds").

The classifier ranks the kinds; a kind whose defining condition the run does not meet is
not reported, however likely the trees find it: a run whose val_loss never rose is not
overfitting, one whose loss never left its start has not "fitted part of the data and
stopped" (underfitting), one whose loss ended far above its start was not held still by
a vanishing gradient, gradient kinds need a gradient series. These are the definitions,
not tuned thresholds: each is the weakest form of its kind's condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

__all__ = ["admissible"]

Features = Mapping[str, float]

# A loss that ends below this many times its start did not end "far above" it.
DIVERGED_END = math.log(1.3)
# val_loss must end at least this far above its best to have "risen" (10%).
OVERFIT_RISE = math.log(1.1)
# Underfitting fits part of the data and stops: the loss moved by at least this share.
UNDERFIT_MOVED = 0.03


def _divergence(f: Features) -> bool:
    return f["nonfinite"] == 1.0 or f["end_vs_start"] >= DIVERGED_END


def _overfitting(f: Features) -> bool:
    return f["has_val"] == 1.0 and f["val_end_vs_min"] >= OVERFIT_RISE


def _underfitting(f: Features) -> bool:
    return f["drop_share"] >= UNDERFIT_MOVED


def _has_grad(f: Features) -> bool:
    return f["has_grad"] == 1.0


def _vanishing(f: Features) -> bool:
    # The loss does not move from its start: one that ended far above it (divergence's
    # bound) moved, whatever its gradient's level.
    return _has_grad(f) and f["end_vs_start"] < DIVERGED_END


_CONDITIONS: dict[str, Callable[[Features], bool]] = {
    "divergence": _divergence,
    "overfitting": _overfitting,
    "underfitting": _underfitting,
    "exploding_gradients": _has_grad,
    "vanishing_gradients": _vanishing,
}


def admissible(kind: str, features: Features) -> bool:
    """Whether the run meets the least condition of `kind` (kinds without one always do)."""
    condition = _CONDITIONS.get(kind)
    return condition is None or condition(features)
