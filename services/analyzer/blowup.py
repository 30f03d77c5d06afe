"""When a loss has blown up: far above its best so far, and above where it started.

One rule for the runner's stop (TrialSpec.stop, judged on the smoothed train_loss while a
trial trains) and for the sweep analysis (judged on a trial's val_loss figures). A loss
that fell to about zero can rise many times its best and still be fine (a warm restart,
the peak of a one-cycle schedule, a noisy small batch), so with a start level a rise
counts only once it is also `above_start` times that level. Without one (the LR range
test) the best alone decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BlowupRule"]


@dataclass(frozen=True)
class BlowupRule:
    above_best: float  # blown up above this many times the best so far...
    above_start: float | None  # ...and this many times the start level (None: no guard)

    def blew_up(self, value: float, best: float, start: float | None = None) -> bool:
        """Whether `value` (the loss now) blew up, given the lowest value so far and the
        start level. A loss that never fell is judged against its start: a best above
        the start does not raise the bar. Ratios mean nothing for a loss that can reach
        zero or below, so a non-positive best or start judges nothing (but non-finite)."""
        if not math.isfinite(value):
            return True
        if self.above_start is None or start is None:
            return best > 0 and value > self.above_best * best
        floor = min(best, start)
        return floor > 0 and value > self.above_best * floor and value > self.above_start * start
