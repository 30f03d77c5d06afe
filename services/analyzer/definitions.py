"""What each kind needs to be true at the least (docs/analyzer.md, "The kinds").

The classifier ranks the kinds; a kind whose defining condition the run does not meet is
not reported, however likely the trees find it: a run whose val_loss never rose is not
overfitting, one whose loss never left its start has not "fitted part of the data and
stopped" (underfitting), one whose loss ended far above its start was not held still by
a vanishing gradient, gradient kinds need a gradient series; a loss that fell a long way
and then climbed back over much of that fall is not healthy, and was not held back by a
small lr, missing capacity or a vanishing gradient: what it reached, it lost. These are the
definitions, not tuned thresholds: each is the weakest form of its kind's condition.
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
# Vanishing holds the loss near its start: one that ever fell below half of it moved (no
# curve of the family corpus labelled vanishing went below 0.55 of its start).
VANISHING_LOW = math.log(0.5)
# Exploding: the gradient norm rose at least one decade over its lowest level so far.
GREW_DECADES = 1.0
# Climbed back: the loss fell by a third or more of its start, then ended at least half
# again above its best and gave back a third of the fall (without ending above its start
# far enough for a divergence).
FELL = math.log(2 / 3)
BACK_ABOVE_BEST = math.log(1.5)
GAVE_BACK = 1 / 3


def _divergence(f: Features) -> bool:
    return f["nonfinite"] == 1.0 or f["end_vs_start"] >= DIVERGED_END


def _overfitting(f: Features) -> bool:
    return f["has_val"] == 1.0 and f["val_end_vs_min"] >= OVERFIT_RISE


def _underfitting(f: Features) -> bool:
    return f["drop_share"] >= UNDERFIT_MOVED and _kept_its_gains(f)


def _climbed_back(f: Features) -> bool:
    low, end = f["min_vs_start"], f["end_vs_start"]
    if low > FELL or f["end_vs_min"] < BACK_ABOVE_BEST or end >= DIVERGED_END:
        return False
    given_back = (math.exp(end) - math.exp(low)) / (1.0 - math.exp(low))
    return given_back >= GAVE_BACK


def _kept_its_gains(f: Features) -> bool:
    return not _climbed_back(f)


def _has_grad(f: Features) -> bool:
    return f["has_grad"] == 1.0


def _grew(f: Features) -> bool:
    # Exploding is growth: the norm rose at least tenfold over a level it had already
    # reached (a run whose first step had its largest gradient, then fell, did not).
    return _has_grad(f) and f["grad_rise"] >= GREW_DECADES


def _vanishing(f: Features) -> bool:
    # The loss does not move from its start: one that ended far above it (divergence's
    # bound) moved, whatever its gradient's level.
    stayed = f["min_vs_start"] > VANISHING_LOW
    return _has_grad(f) and stayed and f["end_vs_start"] < DIVERGED_END and _kept_its_gains(f)


_CONDITIONS: dict[str, Callable[[Features], bool]] = {
    "divergence": _divergence,
    "overfitting": _overfitting,
    "underfitting": _underfitting,
    "healthy": _kept_its_gains,
    "slow_convergence": _kept_its_gains,
    "exploding_gradients": _grew,
    "vanishing_gradients": _vanishing,
}


def admissible(kind: str, features: Features) -> bool:
    """Whether the run meets the least condition of `kind` (kinds without one always do)."""
    condition = _CONDITIONS.get(kind)
    return condition is None or condition(features)
