"""A trial's stop on loss blow-up (TrialSpec.stop): the LR range test ends this way.

The runner hands over each step's loss; reading it is a device sync, which only trials
with a stop rule pay. After a resume the smoothing starts again from the resumed step.
"""

from __future__ import annotations

import math

import torch

from services.analyzer.lr_find import SmoothedLoss
from services.specs import TrialSpec


class LossWatch:
    def __init__(self, factor: float, smoothing: float, prefix: str) -> None:
        self.factor = factor
        self.loss = SmoothedLoss(smoothing)
        self.prefix = prefix

    @classmethod
    def of(cls, spec: TrialSpec) -> LossWatch | None:
        if spec.stop is None:
            return None
        ramp = spec.schedule.name == "range_test"
        prefix = "range test ended" if ramp else "stopped on loss blow-up"
        return cls(spec.stop.loss_above_best, spec.stop.smoothing, prefix)

    def check(self, loss: torch.Tensor, lr: float, step: int) -> str | None:
        """Why the trial ends after this step, or None to go on."""
        raw = float(loss)
        smoothed = self.loss.add(raw)
        if not self.loss.blew_up(self.factor):
            return None
        at = f"at lr {lr:.3g} (step {step})"
        if not math.isfinite(raw):
            return f"{self.prefix}: loss is {raw} {at}"
        return (
            f"{self.prefix}: loss {smoothed:.3g} > {self.factor:g} x best {self.loss.best:.3g} {at}"
        )
