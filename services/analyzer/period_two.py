"""A period-two bounce: the training loss alternating up and down on nearly every step.

Batch noise cannot make it: independent draws around a level give step-to-step changes
whose lag-1 autocorrelation is -0.5; a loss that goes up, down, up, down on almost every
step (autocorrelation near -1) is the weights thrown across a valley and back, which is
what an lr past the optimizer's stability limit does (full-batch GD's classic bounce).
When it is large, in place and far above where the run could settle, the run oscillates
by definition, whatever else its curves show (docs/analyzer.md, "The kinds").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.analyzer.curve_series import Track
from services.analyzer.stats import median

__all__ = ["PeriodTwo", "period_two"]

MIN_POINTS = 60  # in the last third: enough alternations to tell the pattern from chance
ALTERNATION = -0.8  # lag-1 autocorrelation of the log-loss changes (noise: -0.5)
MIN_SWING = 0.1  # median |change| in log units: swings of 10% or more
# "At a high level": the swing is a real share of the fall (a floor's wobble is not).
SWING_OF_FALL = 0.1
SETTLING = 0.9  # the last sixth's level under this share of the fifth's: still settling
ABOVE_START = 1.3  # ending this far above its start is a divergence, not a bounce


@dataclass(frozen=True)
class PeriodTwo:
    autocorrelation: float
    swing: float  # median |change| of log train_loss, last third
    low: float  # q10 and q90 of the last third, stored values
    high: float
    from_step: int


def period_two(train: Track) -> PeriodTwo | None:
    """The bounce, when the last third of a positive, finite train_loss shows one."""
    v = train.values
    if v.size < 3 * MIN_POINTS or not bool(np.all(np.isfinite(v) & (v > 0))):
        return None
    third = v[2 * v.size // 3 :]
    d = np.diff(np.log(third))
    sd = float(np.std(d))
    if sd <= 0:
        return None
    ac = float(np.mean((d[1:] - d.mean()) * (d[:-1] - d.mean())) / sd**2)
    swing = float(median(np.abs(d)))
    start = float(median(v[:3]))
    q10, q50, q90 = (float(q) for q in np.percentile(third, [10, 50, 90]))
    sixth = third.size // 2
    settling = float(median(third[sixth:])) < SETTLING * float(median(third[:sixth]))
    high_level = (q90 - q10) >= SWING_OF_FALL * max(start - q50, 0.0)
    if ac > ALTERNATION or swing < MIN_SWING or settling or not high_level:
        return None
    if q50 > ABOVE_START * start:
        return None
    return PeriodTwo(ac, swing, q10, q90, int(train.steps[2 * v.size // 3]))
