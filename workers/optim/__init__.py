"""Optimizer, lr schedule, SWA and penalties of a trial, all built from its TrialSpec.

`OPTIMIZER_BUILDERS` and `SCHEDULE_BUILDERS` have exactly the keys of the spec registries.
A runner's step, with `t = build_training(spec, task)` (after `task.to(device)`):

    loss = task.loss(batch) + l1_penalty(model, t.l1) + l2_penalty(model, t.l2_in_loss)
    loss.backward(); clip; t.optimizer.step()      # L-BFGS: all of it inside a closure
    t.schedule.after_step()                         # lr for the next step
    if t.swa is not None: t.swa.after_step(t.schedule.steps)
    every eval_every steps: metrics = task.evaluate(); t.schedule.after_eval(metrics["val_loss"])
    at the end: model = t.swa.finalize(task); if model: task.evaluate(model) -> swa_val_loss
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from services.specs import TrialSpec
from workers.optim.budget import effective_batch_size, lr_factor, steps_per_epoch, total_steps
from workers.optim.optimizers import (
    OPTIMIZER_BUILDERS,
    build_optimizer,
    group_scales,
    l1_penalty,
    l2_in_loss,
    l2_penalty,
    param_groups,
    uses_momentum,
)
from workers.optim.schedules import SCHEDULE_BUILDERS, LrSchedule, build_schedule
from workers.optim.swa import SwaState, build_swa
from workers.tasks import Task

__all__ = [
    "OPTIMIZER_BUILDERS",
    "SCHEDULE_BUILDERS",
    "LrSchedule",
    "SwaState",
    "Training",
    "build_optimizer",
    "build_schedule",
    "build_swa",
    "build_training",
    "effective_batch_size",
    "group_scales",
    "l1_penalty",
    "l2_in_loss",
    "l2_penalty",
    "lr_factor",
    "param_groups",
    "steps_per_epoch",
    "total_steps",
    "uses_momentum",
]


@dataclass
class Training:
    """Everything `build_training` makes for one trial, plus the numbers the runner needs."""

    optimizer: torch.optim.Optimizer
    schedule: LrSchedule
    swa: SwaState | None
    batch_size: int  # examples per step (see effective_batch_size)
    steps_per_epoch: int
    total_steps: int
    l1: float  # coefficient for l1_penalty
    l2_in_loss: float  # coefficient for l2_penalty (L-BFGS's weight decay; else 0)


def build_training(spec: TrialSpec, task: Task) -> Training:
    """Optimizer, SWA and schedule, built in the order torch needs (see LrSchedule)."""
    optimizer = build_optimizer(spec, task)
    swa = build_swa(spec, task, optimizer)
    schedule = build_schedule(spec, optimizer, task, swa)
    return Training(
        optimizer=optimizer,
        schedule=schedule,
        swa=swa,
        batch_size=effective_batch_size(spec, task),
        steps_per_epoch=steps_per_epoch(spec, task),
        total_steps=total_steps(spec, task),
        l1=spec.regularization.l1,
        l2_in_loss=l2_in_loss(spec),
    )
