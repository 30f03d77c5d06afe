"""The names lrlab stores and answers with: kinds of trial, methods of sweep, severities.

Each is a StrEnum, so a member compares and serialises as the string that is stored."""

from __future__ import annotations

import enum
from typing import Literal


class TrialKind(enum.StrEnum):
    TRAINED = "trained"  # a sweep's trial that the scheduler runs on a worker
    EXTERNAL = "external"  # a run logged from a script elsewhere (POST /runs)


class SweepMethod(enum.StrEnum):
    """How a stored sweep made its trials (a superset of what a sweep spec may ask for)."""

    SINGLE = "single"
    GRID = "grid"
    RANDOM = "random"
    BAYES = "bayes"
    LR_FIND = "lr_find"  # an lr range test: one trial
    EXTERNAL = "external"  # holds one external run


# Methods whose trials are created one at a time as capacity frees (services.sweeps.submit
# .lazy_trials); their sweep's max_trials is always set.
LAZY_METHODS = (SweepMethod.RANDOM.value, SweepMethod.BAYES.value)

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
