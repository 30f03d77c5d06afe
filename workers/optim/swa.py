"""Stochastic weight averaging with torch.optim.swa_utils (AveragedModel, SWALR, update_bn).

The SWA phase is the optimizer steps with index >= start_step (0-based; start_epoch means
its first step): their lrs come from SWALR, which anneals each group from the lr it had to
swa_lr over anneal_steps steps, and the weights after each of them go into the average.
(With start_step 0 the very first step still uses the schedule's initial lr: the lrs
change only between steps.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from services.specs import TrialSpec
from workers.optim.budget import effective_batch_size, lr_factor
from workers.optim.optimizers import group_scales
from workers.tasks import Task

__all__ = ["SwaState", "build_swa"]


class SwaState:
    """The running average of the model and the SWALR that drives the lr during SWA.

    Call `after_step(steps)` after every optimizer step with the number of steps taken so
    far; `LrSchedule` steps `scheduler`. At the end `finalize(task)` gives the averaged model
    to evaluate (reported as swa_val_loss)."""

    def __init__(
        self,
        model: nn.Module,
        scheduler: SWALR,
        start_step: int,
        batch_size: int,
        seed: int,
    ) -> None:
        self.model = model
        self.averaged = AveragedModel(model)
        self.scheduler = scheduler
        self.start_step = start_step
        self.batch_size = batch_size
        self.seed = seed

    @property
    def n_averaged(self) -> int:
        return int(self.averaged.n_averaged)

    def after_step(self, steps: int) -> None:
        """Average in the current weights if the step just taken (index steps - 1) was in
        the SWA phase."""
        if steps > self.start_step:
            self.averaged.update_parameters(self.model)

    def finalize(self, task: Task) -> nn.Module | None:
        """The averaged model, with BatchNorm statistics recomputed over one epoch of the
        training split (its running stats were never averaged); None if SWA never began."""
        if self.n_averaged == 0:
            return None
        module = self.averaged.module
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
            # A generator of its own: drawing from the training one would shift the batch
            # order of a trial resumed after this point.
            generator = torch.Generator().manual_seed(self.seed)
            update_bn(task.epoch_batches(self.batch_size, generator), self.averaged)
        return module

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.scheduler.load_state_dict(state["scheduler"])


def build_swa(spec: TrialSpec, task: Task, optimizer: torch.optim.Optimizer) -> SwaState | None:
    """The trial's SWA state, or None without regularization.swa. Build it after the
    optimizer (SWALR's construction leaves the lrs as they are) and pass it to
    `build_schedule`."""
    swa = spec.regularization.swa
    if swa is None:
        return None
    batch_size = effective_batch_size(spec, task)
    if swa.start_step is not None:
        start = swa.start_step
    else:
        assert swa.start_epoch is not None  # the spec requires exactly one of the two
        start = swa.start_epoch * task.batches_per_epoch(batch_size)
    factor = lr_factor(spec, batch_size)
    swa_lrs = [
        swa.swa_lr * factor * scale for scale in group_scales(spec, len(optimizer.param_groups))
    ]
    scheduler = SWALR(
        optimizer,
        swa_lr=swa_lrs,  # type: ignore[arg-type]  # one per group works; the stub says float
        anneal_epochs=swa.anneal_steps,
        anneal_strategy=swa.anneal_strategy,
    )
    return SwaState(task.model, scheduler, start, batch_size, spec.seed)
