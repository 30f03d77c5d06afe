"""Learning-rate schedule params, one model per `torch.optim.lr_scheduler` class.

Units: every length here (step_size, milestones, T_max, T_0, step_size_up, warmup_steps,
...) counts optimizer steps, not epochs: the worker steps the scheduler after every
optimizer step. The exception is `plateau`, which steps on each evaluation of val_loss, so
its patience and cooldown count evaluations (every `eval_every` steps).

Every schedule may start with a linear warmup: for `warmup_steps` steps (or a
`warmup_fraction` of the budget's steps) the lr ramps from `warmup_start_factor * lr` to
lr, then the schedule proper begins.

Derived fields: a length or peak lr left null is derived when the trial starts, from its
budget's steps and its lr (`schedule_defaults` has the rules), so a schedule can be named
alone: `{"name": "step"}` drops the lr 10x at a third and two thirds of the run.
"""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import BeforeValidator, Field, field_validator, model_validator

from services.specs.common import MAX_STEPS, fail, rule_error
from services.specs.registry import RegistryParams, check_registry, registry_parser

__all__ = [
    "SCHEDULES",
    "ConstantSchedule",
    "CosineRestartsSchedule",
    "CosineSchedule",
    "CyclicSchedule",
    "ExponentialSchedule",
    "LinearSchedule",
    "MultiStepSchedule",
    "OneCycleSchedule",
    "PlateauSchedule",
    "RangeTestSchedule",
    "Schedule",
    "ScheduleParams",
    "StepSchedule",
]

# A multiplicative decay: 1 keeps the lr, above 1 would grow it without bound.
Decay = Annotated[float, Field(gt=0, le=1)]


class ScheduleParams(RegistryParams):
    spec_kind: ClassVar[str] = "schedule"

    warmup_steps: int = Field(
        default=0,
        ge=0,
        le=MAX_STEPS,
        description="Linear warmup steps before the schedule; 0 = none.",
    )
    warmup_start_factor: float = Field(
        default=0.1, gt=0, le=1, description="Warmup starts at this fraction of the lr."
    )
    warmup_fraction: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Warmup for this fraction of the budget's steps (0: none); exclusive "
        "with warmup_steps.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> ScheduleParams:
        if self.warmup_fraction and self.warmup_steps > 0:
            fail(
                ("warmup_fraction",),
                f"set warmup_steps ({self.warmup_steps}) or warmup_fraction "
                f"({self.warmup_fraction}), not both",
                self.warmup_fraction,
            )
        return self


class ConstantSchedule(ScheduleParams):
    """Keep the optimizer's lr for the whole run (after any warmup)."""

    name: Literal["constant"] = "constant"


class StepSchedule(ScheduleParams):
    """Multiply the lr by gamma every step_size steps (StepLR)."""

    name: Literal["step"] = "step"
    step_size: int | None = Field(
        default=None, ge=1, le=MAX_STEPS, description="null: a third of the schedule's steps."
    )
    gamma: Decay = 0.1


class MultiStepSchedule(ScheduleParams):
    """Multiply the lr by gamma at each milestone step (MultiStepLR)."""

    name: Literal["multistep"] = "multistep"
    milestones: list[Annotated[int, Field(ge=1, le=MAX_STEPS)]] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="null: at 1/2 and 3/4 of the schedule's steps.",
    )
    gamma: Decay = 0.1

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, milestones: list[int] | None) -> list[int] | None:
        # torch counts repeated milestones as repeated decays; a typo is likelier here.
        for before, after in itertools.pairwise(milestones or []):
            if after <= before:
                raise rule_error(
                    f"milestones must be strictly increasing (got {after} after {before})"
                )
        return milestones


class ExponentialSchedule(ScheduleParams):
    """Multiply the lr by gamma every step (ExponentialLR)."""

    name: Literal["exponential"] = "exponential"
    gamma: Decay | None = Field(
        default=None, description="null: the lr falls 100x over the schedule's steps."
    )


class CosineSchedule(ScheduleParams):
    """Cosine annealing from lr to eta_min over T_max steps (CosineAnnealingLR)."""

    name: Literal["cosine"] = "cosine"
    T_max: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STEPS,
        description="Steps of one half-cosine; null = the whole budget.",
    )
    eta_min: float = Field(default=0.0, ge=0)


class CosineRestartsSchedule(ScheduleParams):
    """Cosine annealing with warm restarts every T_0, T_0*T_mult, ... steps (SGDR)."""

    name: Literal["cosine_restarts"] = "cosine_restarts"
    T_0: int | None = Field(
        default=None, ge=1, le=MAX_STEPS, description="null: a quarter of the schedule's steps."
    )
    T_mult: int = Field(default=1, ge=1, le=1000)
    eta_min: float = Field(default=0.0, ge=0)


class CyclicSchedule(ScheduleParams):
    """Cycle the lr between base_lr and max_lr (CyclicLR); base_lr null = the optimizer lr."""

    name: Literal["cyclic"] = "cyclic"
    base_lr: float | None = Field(default=None, gt=0)
    max_lr: float | None = Field(default=None, gt=0, description="null: 4 x the base lr.")
    step_size_up: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STEPS,
        description="null: a quarter of the schedule's steps (two cycles).",
    )
    step_size_down: int | None = Field(
        default=None, ge=1, le=MAX_STEPS, description="null = step_size_up."
    )
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular"
    gamma: float = Field(default=1.0, gt=0, le=1, description="Decay per step in exp_range.")

    @model_validator(mode="after")
    def _range_not_empty(self) -> CyclicSchedule:
        # When base_lr is null the trial spec checks against the optimizer's lr instead.
        if self.base_lr is not None and self.max_lr is not None and self.max_lr <= self.base_lr:
            fail(
                ("max_lr",),
                f"max_lr ({self.max_lr}) must be greater than base_lr ({self.base_lr})",
                self.max_lr,
            )
        return self


class OneCycleSchedule(ScheduleParams):
    """One cycle up to max_lr and down far below it over the whole budget (OneCycleLR)."""

    name: Literal["one_cycle"] = "one_cycle"
    max_lr: float | None = Field(
        default=None, gt=0, description="The peak lr; null: the optimizer's lr."
    )
    pct_start: float = Field(default=0.3, gt=0, lt=1, description="Fraction spent rising.")
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: float = Field(default=25.0, gt=0, description="Start lr = max_lr/div_factor.")
    final_div_factor: float = Field(
        default=1e4, gt=0, description="Final lr = start lr/final_div_factor."
    )


class LinearSchedule(ScheduleParams):
    """Decay the lr linearly from lr to end_factor x lr over the schedule's steps
    (LinearLR from 1 to end_factor): the linear decay of many fine-tuning recipes."""

    name: Literal["linear"] = "linear"
    end_factor: float = Field(
        default=0.0, ge=0, le=1, description="The last lr as a fraction of the lr."
    )


class PlateauSchedule(ScheduleParams):
    """Multiply the lr by factor when val_loss stops improving (ReduceLROnPlateau).

    Steps once per evaluation, so patience and cooldown count evaluations."""

    name: Literal["plateau"] = "plateau"
    factor: float = Field(default=0.1, gt=0, lt=1)
    patience: int = Field(default=10, ge=0, le=MAX_STEPS)
    threshold: float = Field(default=1e-4, ge=0)
    cooldown: int = Field(default=0, ge=0, le=MAX_STEPS)
    min_lr: float = Field(default=0.0, ge=0)


class RangeTestSchedule(ScheduleParams):
    """Ramp the lr exponentially from the optimizer's lr to end_lr over the budget: the LR
    range test's ramp (ExponentialLR with gamma = (end_lr/lr)^(1/(steps-1)), so the first
    step trains at lr and the last at end_lr)."""

    name: Literal["range_test"] = "range_test"
    end_lr: float = Field(gt=0, description="The lr of the last step; above optimizer.lr.")


SCHEDULES: dict[str, type[ScheduleParams]] = {
    "constant": ConstantSchedule,
    "step": StepSchedule,
    "multistep": MultiStepSchedule,
    "exponential": ExponentialSchedule,
    "cosine": CosineSchedule,
    "cosine_restarts": CosineRestartsSchedule,
    "cyclic": CyclicSchedule,
    "one_cycle": OneCycleSchedule,
    "linear": LinearSchedule,
    "plateau": PlateauSchedule,
    "range_test": RangeTestSchedule,
}

_ScheduleUnion = (
    ConstantSchedule
    | StepSchedule
    | MultiStepSchedule
    | ExponentialSchedule
    | CosineSchedule
    | CosineRestartsSchedule
    | CyclicSchedule
    | OneCycleSchedule
    | LinearSchedule
    | PlateauSchedule
    | RangeTestSchedule
)
check_registry(SCHEDULES, get_args(_ScheduleUnion))

# A field of this type takes {"name": "cosine", ...} or the bare name "cosine".
Schedule = Annotated[
    _ScheduleUnion,
    Field(discriminator="name"),
    BeforeValidator(registry_parser("schedule", SCHEDULES)),
]
