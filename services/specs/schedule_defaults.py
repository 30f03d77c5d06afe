"""The derived fields of a schedule: what a length or peak lr left null becomes for one trial.

A schedule may be named alone (`{"name": "step"}`, or `scheduler: StepLR` in a W&B file);
the fields it then lacks are derived when the trial starts, from the optimizer steps its
budget gives (an epochs budget becomes steps only then: it depends on the task's data
size) and from its optimizer's lr. "The schedule's steps" are the budget's steps less the
warmup, the steps the schedule proper runs.

field                        derived
warmup_fraction f            warmup_steps = round(f x budget steps), at least 1 (f = 0:
                             no warmup)
step.step_size               a third of the schedule's steps, rounded up: the lr drops
                             twice, to gamma^2 of the lr (1% with the default gamma 0.1)
multistep.milestones         1/2 and 3/4 of the schedule's steps (gamma twice, as step)
exponential.gamma            0.01^(1/steps): the lr falls 100x over the schedule
cosine_restarts.T_0          a quarter of the schedule's steps: four cycles (T_mult 1)
cyclic.max_lr                4 x the base lr (base_lr, else the optimizer's lr): the top of
                             the 3-4x range the cyclical-lr method suggests
cyclic.step_size_up          a quarter of the schedule's steps: two full cycles
one_cycle.max_lr             the optimizer's lr: the lr a sweep varies is the peak; the
                             cycle starts at lr/div_factor and ends far below it

Lengths are at least 1 step. A field the spec sets is never changed.
"""

from __future__ import annotations

import math
from typing import Any

from services.specs.schedules import (
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    MultiStepSchedule,
    OneCycleSchedule,
    ScheduleParams,
    StepSchedule,
)

__all__ = ["CYCLIC_MAX_LR_FACTOR", "EXPONENTIAL_FALL", "warmup_steps_of", "with_defaults"]

CYCLIC_MAX_LR_FACTOR = 4.0
EXPONENTIAL_FALL = 100.0  # how many times lower the lr ends under a derived exponential gamma


def warmup_steps_of(schedule: ScheduleParams, total_steps: int) -> int:
    """The warmup's length in steps: warmup_steps, or warmup_fraction of `total_steps`."""
    if not schedule.warmup_fraction:
        return schedule.warmup_steps
    return max(1, round(schedule.warmup_fraction * total_steps))


def _part(steps: int, fraction: float) -> int:
    return max(1, int(steps * fraction))


def _derived(schedule: ScheduleParams, steps: int, lr: float) -> dict[str, Any]:
    """The derived values of the fields `schedule` leaves null, for `steps` schedule steps."""
    if isinstance(schedule, StepSchedule) and schedule.step_size is None:
        # Rounded up, so that a third drop never lands inside the run.
        return {"step_size": max(1, math.ceil(steps / 3))}
    if isinstance(schedule, MultiStepSchedule) and schedule.milestones is None:
        # Strictly increasing, as the spec wants, even when the run is a few steps long.
        return {"milestones": sorted({_part(steps, 1 / 2), _part(steps, 3 / 4)})}
    if isinstance(schedule, ExponentialSchedule) and schedule.gamma is None:
        return {"gamma": (1 / EXPONENTIAL_FALL) ** (1 / steps)}
    if isinstance(schedule, CosineRestartsSchedule) and schedule.T_0 is None:
        return {"T_0": _part(steps, 1 / 4)}
    if isinstance(schedule, CyclicSchedule):
        out: dict[str, Any] = {}
        if schedule.max_lr is None:
            out["max_lr"] = CYCLIC_MAX_LR_FACTOR * (schedule.base_lr or lr)
        if schedule.step_size_up is None:
            out["step_size_up"] = _part(steps, 1 / 4)
        return out
    if isinstance(schedule, OneCycleSchedule) and schedule.max_lr is None:
        return {"max_lr": lr}
    return {}


def with_defaults(schedule: ScheduleParams, total_steps: int, lr: float) -> ScheduleParams:
    """`schedule` with every derived field set, for a trial of `total_steps` optimizer steps
    and optimizer lr `lr` (before lr scaling, like every lr of the spec); the warmup is
    given in steps."""
    warmup = warmup_steps_of(schedule, total_steps)
    steps = max(1, total_steps - warmup)
    update = {"warmup_steps": warmup, "warmup_fraction": None, **_derived(schedule, steps, lr)}
    return schedule.model_copy(update=update)
