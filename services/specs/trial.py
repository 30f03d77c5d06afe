"""The trial spec: everything one training run needs, validated before it is stored.

A single job is a TrialSpec too; the API wraps it in a sweep of method "single".
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from services.specs.common import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_STEPS,
    StrictModel,
    fail,
    rule_error,
)
from services.specs.optimizers import Optimizer, SGDParams
from services.specs.schedules import (
    ConstantSchedule,
    CyclicSchedule,
    RangeTestSchedule,
    Schedule,
)
from services.specs.tasks import Task

__all__ = [
    "REGISTRY_FIELDS",
    "SWA",
    "BatchSize",
    "Budget",
    "Diagnostics",
    "LossStop",
    "LrScaling",
    "Regularization",
    "Resources",
    "TrialSpec",
    "effective_weight_decay",
    "scaled_lr",
]

# Fields whose value is a registry entry chosen by `name`.
REGISTRY_FIELDS = ("task", "optimizer", "schedule")


def _parse_batch_size(value: Any) -> Any:
    # Checked by hand: the union's own errors ("valid integer", "literal 'full'") would
    # come as two messages, neither stating the rule; and True is not a batch size.
    if value == "full":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_BATCH_SIZE:
        return value
    raise rule_error(f'must be an integer from 1 to {MAX_BATCH_SIZE} or "full" (got {value!r})')


# "full" is full-batch gradient descent: every step sees the whole training split.
BatchSize = Annotated[
    Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)] | Literal["full"],
    BeforeValidator(_parse_batch_size),
]


class LrScaling(StrictModel):
    """How the lr follows batch size, relative to base_batch_size.

    The factor (bs/base, or its square root) multiplies every lr of the trial alike: the
    optimizer's lr and the schedule's and SWA's absolute lrs, so their ratios (and the
    checks between them) hold at any batch size. With batch_size "full", bs is the size
    of the training split."""

    spec_label: ClassVar[str] = "lr_scaling"

    rule: Literal["none", "linear", "sqrt"] = "none"
    base_batch_size: int = Field(default=32, ge=1, le=MAX_BATCH_SIZE)


def scaled_lr(lr: float, batch_size: int, scaling: LrScaling) -> float:
    """The lr to use at `batch_size` under `scaling` (linear: lr*bs/base, sqrt: its root)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    ratio = batch_size / scaling.base_batch_size
    if scaling.rule == "linear":
        return lr * ratio
    if scaling.rule == "sqrt":
        return lr * math.sqrt(ratio)
    return lr


class SWA(StrictModel):
    """Stochastic weight averaging (torch.optim.swa_utils): from start_step (or the start
    of start_epoch) the lr anneals to swa_lr over anneal_steps and weights are averaged."""

    spec_label: ClassVar[str] = "regularization.swa"

    start_step: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    start_epoch: int | None = Field(default=None, ge=0, le=MAX_EPOCHS)
    swa_lr: float = Field(gt=0)
    anneal_steps: int = Field(default=10, ge=1, le=MAX_STEPS)
    anneal_strategy: Literal["cos", "linear"] = "cos"

    @model_validator(mode="after")
    def _one_start(self) -> SWA:
        if (self.start_step is None) == (self.start_epoch is None):
            got = "both" if self.start_step is not None else "neither"
            fail((), f"set exactly one of start_step or start_epoch (got {got})")
        return self


class Regularization(StrictModel):
    """Penalties, dropout, gradient clipping, per-layer lr decay and SWA."""

    spec_label: ClassVar[str] = "regularization"

    l1: float = Field(default=0.0, ge=0, description="L1 penalty added to the loss.")
    l2: float = Field(
        default=0.0, ge=0, description="Weight decay; exclusive with optimizer.weight_decay."
    )
    dropout: float = Field(default=0.0, ge=0, lt=1)
    grad_clip_norm: float | None = Field(default=None, gt=0)
    grad_clip_value: float | None = Field(default=None, gt=0)
    layer_decay: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Per-layer lr: the last layer gets lr, each earlier one layer_decay times "
        "the next.",
    )
    swa: SWA | None = None

    @model_validator(mode="after")
    def _one_clip(self) -> Regularization:
        # Clipping by norm then by value (or the reverse) is rarely meant; pick one.
        if self.grad_clip_norm is not None and self.grad_clip_value is not None:
            fail(
                ("grad_clip_value",),
                "grad_clip_norm and grad_clip_value are mutually exclusive; set one",
                self.grad_clip_value,
            )
        return self


class Budget(StrictModel):
    """How long a trial trains: a number of epochs or of optimizer steps (exactly one)."""

    spec_label: ClassVar[str] = "budget"

    epochs: int | None = Field(default=None, ge=1, le=MAX_EPOCHS)
    max_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)

    @model_validator(mode="after")
    def _exactly_one(self) -> Budget:
        if (self.epochs is None) == (self.max_steps is None):
            got = "both" if self.epochs is not None else "neither"
            fail((), f"set exactly one of epochs or max_steps (got {got})")
        return self


class Resources(StrictModel):
    """What one trial asks Ray for; fractions share a CPU or GPU between trials."""

    spec_label: ClassVar[str] = "resources"

    cpus: float = Field(default=1.0, gt=0, le=1024)
    gpus: float = Field(default=0.0, ge=0, le=64)

    @field_validator("gpus")
    @classmethod
    def _whole_above_one(cls, gpus: float) -> float:
        # Ray only shares a single GPU fractionally; beyond one it hands out whole devices.
        if gpus > 1 and not gpus.is_integer():
            raise rule_error(f"gpus above 1 must be a whole number (got {gpus})")
        return gpus


class LossStop(StrictModel):
    """End the trial once its training loss blows up: the smoothed loss goes above
    `loss_above_best` times its best so far and `loss_above_start` times its start level
    (its smoothed value after the first 10 steps). The second bar keeps a loss that fell
    to about zero from counting as blown up when a warm restart, a one-cycle peak or a
    noisy batch lifts it many times its best. On by default; `"stop": null` turns it off.

    A trial ends `pruned` with a stop_reason "diverged: ...". The LR range test (schedule
    range_test) instead ends `succeeded`: blowing up is how its ramp ends."""

    spec_label: ClassVar[str] = "stop"

    loss_above_best: float = Field(
        default=10.0, gt=1, description="Blown up above this many times the best so far."
    )
    loss_above_start: float | None = Field(
        default=2.0,
        ge=1,
        description="...and above this many times the start level; null: the best alone.",
    )
    smoothing: float = Field(
        default=0.98,
        ge=0,
        lt=1,
        description="EMA factor of the smoothed loss (bias-corrected); 0 = the raw loss.",
    )


def _parse_stop(value: Any) -> Any:
    # Off is null, the one spelling: a false or "off" would read as a typo for it.
    if value is None or isinstance(value, dict | LossStop):
        return value
    raise rule_error(
        f"must be an object with loss_above_best, loss_above_start, smoothing, or null to "
        f"turn the stop off (got {value!r})"
    )


def _whole_number(low: int, high: int | None = None, *, optional: bool = False) -> BeforeValidator:
    """An integer in [low, high], said in one message that states the rule: pydantic's own
    would take True as 1 and 10.0 as 10, and split the rule over several messages."""
    rule = f">= {low}" if high is None else f"from {low} to {high}"

    def check(value: Any) -> Any:
        if optional and value is None:
            return value
        whole = isinstance(value, int) and not isinstance(value, bool)
        if whole and low <= value and (high is None or value <= high):
            return value
        raise rule_error(f"must be an integer {rule} (got {value!r})")

    return BeforeValidator(check)


class Diagnostics(StrictModel):
    """Extra measurements a trial logs as metrics, at a cost in training time (off unless
    set). Measuring never changes the trial's own curve."""

    spec_label: ClassVar[str] = "diagnostics"

    sharpness_every: Annotated[int | None, _whole_number(1, MAX_STEPS, optional=True)] = Field(
        default=None,
        ge=1,
        le=MAX_STEPS,
        description="Log `sharpness`, the top Hessian eigenvalue of the training loss on the "
        "step's batch, every this many steps (the analyzer compares it with the optimizer's "
        "stability limit, 2/lr for plain SGD); unset: never.",
    )
    sharpness_iters: Annotated[int, _whole_number(1, 200)] = Field(
        default=20,
        ge=1,
        le=200,
        description="Most power-iteration steps per sharpness estimate (each one Hessian-"
        "vector product); it stops sooner once the estimate settles.",
    )


class TrialSpec(StrictModel):
    """One training run: task, optimizer, schedule, batch size, regularization, budget."""

    spec_label: ClassVar[str] = "trial spec"

    task: Task
    optimizer: Optimizer = SGDParams(lr=0.01)
    schedule: Schedule = ConstantSchedule()
    batch_size: BatchSize = 32
    lr_scaling: LrScaling = Field(default_factory=LrScaling)
    regularization: Regularization = Field(default_factory=Regularization)
    budget: Budget = Field(default_factory=lambda: Budget(epochs=10))
    eval_every: int = Field(
        default=50, ge=1, le=MAX_STEPS, description="Evaluate every this many steps."
    )
    checkpoint_every: int = Field(
        default=1000,
        ge=1,
        le=MAX_STEPS,
        description="Checkpoint every N steps (each costs a metric flush and a file write).",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    resources: Resources = Field(default_factory=Resources)
    max_restarts: int = Field(default=2, ge=0, le=100)
    stop: Annotated[LossStop | None, BeforeValidator(_parse_stop)] = Field(
        default_factory=LossStop, description="Stop on loss blow-up; null turns it off."
    )
    diagnostics: Diagnostics = Field(default_factory=Diagnostics)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrialSpec:
        schedule, budget, reg = self.schedule, self.budget, self.regularization
        if isinstance(schedule, RangeTestSchedule) and schedule.end_lr <= self.optimizer.lr:
            fail(
                ("schedule", "end_lr"),
                f"end_lr ({schedule.end_lr}) must be greater than optimizer.lr "
                f"({self.optimizer.lr}), where the ramp starts",
                schedule.end_lr,
            )
        if isinstance(schedule, CyclicSchedule) and schedule.base_lr is None:
            # The schedule checked an explicit base_lr itself; a defaulted one is ours (a
            # derived max_lr, 4 x the lr, is above it by construction).
            lr = self.optimizer.lr
            if schedule.max_lr is not None and schedule.max_lr <= lr:
                fail(
                    ("schedule", "max_lr"),
                    f"max_lr ({schedule.max_lr}) must be greater than base_lr ({lr}, "
                    "the optimizer.lr since schedule.base_lr is unset)",
                    schedule.max_lr,
                )
        if reg.l2 > 0 and self.optimizer.weight_decay > 0:
            fail(
                ("regularization", "l2"),
                "set weight decay once: regularization.l2 or optimizer.weight_decay "
                f"(got l2={reg.l2}, weight_decay={self.optimizer.weight_decay})",
                reg.l2,
            )
        if reg.layer_decay is not None and self.optimizer.name == "lbfgs":
            fail(
                ("regularization", "layer_decay"),
                "layer_decay needs one param group per layer, and lbfgs takes a single group",
                reg.layer_decay,
            )
        # A start at or past the end never happens: most likely steps and epochs mixed up.
        swa = reg.swa
        limits: list[tuple[tuple[str, ...], int, str, int]] = []
        if budget.max_steps is not None:
            end = ("budget.max_steps", budget.max_steps)
            limits.append((("schedule", "warmup_steps"), schedule.warmup_steps, *end))
            if swa is not None and swa.start_step is not None:
                limits.append((("regularization", "swa", "start_step"), swa.start_step, *end))
        if budget.epochs is not None and swa is not None and swa.start_epoch is not None:
            end = ("budget.epochs", budget.epochs)
            limits.append((("regularization", "swa", "start_epoch"), swa.start_epoch, *end))
        for loc, value, limit_name, limit in limits:
            if value >= limit:
                fail(loc, f"{loc[-1]} ({value}) must be less than {limit_name} ({limit})", value)
        return self


def effective_weight_decay(spec: TrialSpec) -> float:
    """The one weight decay a trial uses (the spec forbids setting it in both places)."""
    return spec.regularization.l2 or spec.optimizer.weight_decay
