"""A trial's stop on loss blow-up (TrialSpec.stop, on by default), by one rule
(services.analyzer.blowup) on the bias-corrected EMA of the training loss.

- A trained trial is judged a block of steps at a time, on the floats StepLog reads when
  it drains the block: the watch adds no device sync. The start level is the smoothed
  loss after START_STEPS steps, when it stands for more than one batch, and the best
  counts from there. The trial ends `pruned` ("diverged: ...") at the first step that
  blew up, having run at most a block past it.
- The LR range test (schedule range_test) is judged every step, against its best alone,
  so its curve ends exactly where the loss blew up (one device sync a step, which only
  it pays). It ends `succeeded`: blowing up is how a ramp ends.

The watch's state is checkpointed, so a resumed trial stops where an unbroken one would.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from services.analyzer.blowup import BlowupRule
from services.analyzer.lr_find import SmoothedLoss
from services.specs import LossStop, TrialSpec

__all__ = ["START_STEPS", "LossWatch"]

# Steps before the start level is taken and anything but a non-finite loss is judged.
START_STEPS = 10


class LossWatch:
    def __init__(self, stop: LossStop, start_steps: int) -> None:
        self.rule = BlowupRule(stop.loss_above_best, stop.loss_above_start)
        self.loss = SmoothedLoss(stop.smoothing)
        self.start_steps = start_steps
        self.start: float | None = None
        self.best = math.inf

    @classmethod
    def for_trial(cls, spec: TrialSpec, surrogate_loss: bool) -> LossWatch | None:
        """The block-wise watch of a trained trial; None when off, for the range test
        (see for_range_test) or for a task whose loss level means nothing."""
        if spec.stop is None or spec.schedule.name == "range_test" or surrogate_loss:
            return None
        return cls(spec.stop, START_STEPS)

    @classmethod
    def for_range_test(cls, spec: TrialSpec) -> LossWatch | None:
        if spec.stop is None or spec.schedule.name != "range_test":
            return None
        return cls(spec.stop, 0)

    def add(self, raw: float) -> bool:
        """Take the next step's loss; whether the loss blew up there."""
        value = self.loss.add(raw)
        if self.loss.count < max(self.start_steps, 1):
            return not math.isfinite(value)
        if self.start is None:
            self.start = value
        self.best = min(self.best, value)
        return self.rule.blew_up(value, self.best, self.start)

    def evidence(self) -> str:
        """The smoothed loss against its best and start, after a blow-up."""
        value, best = self.loss.value, self.best
        text = f"smoothed train_loss {value:.3g} is {value / best:.3g} x its best {best:.3g}"
        if self.rule.above_start is not None and self.start is not None:
            text += f" and {value / self.start:.3g} x its start {self.start:.3g}"
        return text

    def check(self, loss: torch.Tensor, lr: float, step: int) -> str | None:
        """The range test's per-step check: why the test ends after this step, or None."""
        raw = float(loss)
        if not self.add(raw):
            return None
        at = f"at lr {lr:.3g} (step {step})"
        if not math.isfinite(raw):
            return f"range test ended: loss is {raw} {at}"
        factor, smoothed, best = self.rule.above_best, self.loss.value, self.best
        return f"range test ended: loss {smoothed:.3g} > {factor:g} x best {best:.3g} {at}"

    def state_dict(self) -> dict[str, Any]:
        return {"loss": vars(self.loss).copy(), "start": self.start, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self.loss).update(state["loss"])
        self.start, self.best = state["start"], state["best"]
