"""torch.optim.lr_scheduler schedules from a trial spec, behind one small stepping wrapper.

Lengths are optimizer steps (services.specs.schedules): the runner calls `after_step()`
after every optimizer step and `after_eval(val_loss)` after every evaluation; only
plateau listens to the latter.

Absolute lrs in a schedule (cyclic base_lr/max_lr, one_cycle max_lr, plateau min_lr,
cosine eta_min) are multiplied by the lr_scaling factor like every lr of the trial, and
per param group by the layer-decay scale where torch takes one value per group; cosine and
cosine_restarts take a single eta_min, so it is one floor for all groups.

Derived fields (a step_size, gamma, max_lr ... left null) are filled for the trial's own
steps and lr first (services.specs.schedule_defaults), as is a warmup_fraction's length, so
every builder sees a complete schedule.

Warmup: with warmup_steps > 0 a LinearLR ramps each group from warmup_start_factor x its
lr to its lr, then `SequentialLR` hands over to the schedule proper, which then runs
`total - warmup_steps` steps (what T_max=null and one_cycle's length mean). The ramp ends at
each group's `initial_lr`: the optimizer's lr, except for one_cycle, whose own start lr
(max_lr / div_factor) torch stores there, so the one cycle starts where the warmup ends.
ReduceLROnPlateau cannot sit in a SequentialLR: it gets the LinearLR for the first
warmup_steps and listens to evaluations only after them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from services.specs import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CosineSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    MultiStepSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    StepSchedule,
    TrialSpec,
)
from services.specs.schedule_defaults import with_defaults
from services.specs.schedules import LinearSchedule, RangeTestSchedule
from workers.optim.budget import effective_batch_size, lr_factor, total_steps
from workers.optim.optimizers import group_scales, uses_momentum
from workers.tasks import Task

if TYPE_CHECKING:
    from workers.optim.swa import SwaState

__all__ = [
    "SCHEDULE_BUILDERS",
    "LrSchedule",
    "ScheduleBuilder",
    "ScheduleContext",
    "build_schedule",
]

Optimizer = torch.optim.Optimizer
_T = TypeVar("_T")


@dataclass(frozen=True)
class ScheduleContext:
    """What a schedule builder needs beyond its params."""

    steps: int  # optimizer steps of the schedule proper (after any warmup), >= 1
    factor: float  # the lr_scaling factor
    scales: list[float]  # per param group, relative to group 0 (layer decay)
    base_lrs: list[float]  # the optimizer's lr per group, before any scheduler touched it
    cycle_momentum: bool  # whether cyclic/one_cycle may cycle the optimizer's momentum

    def absolute(self, lr: float) -> list[float]:
        """An absolute lr of the spec, per param group."""
        return [lr * self.factor * scale for scale in self.scales]


ScheduleBuilder = Callable[[Optimizer, Any, ScheduleContext], LRScheduler]


def _constant(opt: Optimizer, p: ConstantSchedule, ctx: ScheduleContext) -> LRScheduler:
    # factor 1 from the start: the lr never changes, but a warmup still has a successor.
    return ConstantLR(opt, factor=1.0, total_iters=0)


def _derived(value: _T | None) -> _T:
    # build_schedule fills every derived field before a builder runs.
    if value is None:
        raise ValueError("a derived schedule field was not filled in")
    return value


def _step(opt: Optimizer, p: StepSchedule, ctx: ScheduleContext) -> LRScheduler:
    return StepLR(opt, step_size=_derived(p.step_size), gamma=p.gamma)


def _multistep(opt: Optimizer, p: MultiStepSchedule, ctx: ScheduleContext) -> LRScheduler:
    return MultiStepLR(opt, milestones=_derived(p.milestones), gamma=p.gamma)


def _exponential(opt: Optimizer, p: ExponentialSchedule, ctx: ScheduleContext) -> LRScheduler:
    return ExponentialLR(opt, gamma=_derived(p.gamma))


def _linear(opt: Optimizer, p: LinearSchedule, ctx: ScheduleContext) -> LRScheduler:
    return LinearLR(opt, start_factor=1.0, end_factor=p.end_factor, total_iters=ctx.steps)


def _cosine(opt: Optimizer, p: CosineSchedule, ctx: ScheduleContext) -> LRScheduler:
    t_max = ctx.steps if p.T_max is None else p.T_max
    return CosineAnnealingLR(opt, T_max=t_max, eta_min=p.eta_min * ctx.factor)


def _cosine_restarts(
    opt: Optimizer, p: CosineRestartsSchedule, ctx: ScheduleContext
) -> LRScheduler:
    return CosineAnnealingWarmRestarts(
        opt, T_0=_derived(p.T_0), T_mult=p.T_mult, eta_min=p.eta_min * ctx.factor
    )


def _cyclic(opt: Optimizer, p: CyclicSchedule, ctx: ScheduleContext) -> LRScheduler:
    return CyclicLR(
        opt,
        base_lr=ctx.base_lrs if p.base_lr is None else ctx.absolute(p.base_lr),
        max_lr=ctx.absolute(_derived(p.max_lr)),
        step_size_up=_derived(p.step_size_up),
        step_size_down=p.step_size_down,
        mode=p.mode,
        gamma=p.gamma,
        cycle_momentum=ctx.cycle_momentum,
    )


def _one_cycle(opt: Optimizer, p: OneCycleSchedule, ctx: ScheduleContext) -> LRScheduler:
    if p.pct_start * ctx.steps == 1:
        # torch's first phase would then span 0 steps and divide by zero at step 0.
        raise ValueError(
            f"schedule.pct_start: pct_start x steps = {p.pct_start} x {ctx.steps} = 1, which "
            "leaves torch's OneCycleLR a warm-up phase of zero steps; change pct_start or "
            "the budget"
        )
    return OneCycleLR(
        opt,
        max_lr=ctx.absolute(_derived(p.max_lr)),
        total_steps=ctx.steps,
        pct_start=p.pct_start,
        anneal_strategy=p.anneal_strategy,
        div_factor=p.div_factor,
        final_div_factor=p.final_div_factor,
        cycle_momentum=ctx.cycle_momentum,
    )


def _plateau(opt: Optimizer, p: PlateauSchedule, ctx: ScheduleContext) -> LRScheduler:
    return ReduceLROnPlateau(
        opt,
        mode="min",
        factor=p.factor,
        patience=p.patience,
        threshold=p.threshold,
        cooldown=p.cooldown,
        min_lr=ctx.absolute(p.min_lr),
    )


def _range_test(opt: Optimizer, p: RangeTestSchedule, ctx: ScheduleContext) -> LRScheduler:
    # end/start is the same for every group (the factor and layer scales cancel); the
    # last of `steps` steps trains at end_lr.
    ratio = ctx.absolute(p.end_lr)[0] / ctx.base_lrs[0]
    return ExponentialLR(opt, gamma=ratio ** (1 / max(1, ctx.steps - 1)))


SCHEDULE_BUILDERS: dict[str, ScheduleBuilder] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "cosine": _cosine,
    "cosine_restarts": _cosine_restarts,
    "cyclic": _cyclic,
    "one_cycle": _one_cycle,
    "linear": _linear,
    "plateau": _plateau,
    "range_test": _range_test,
}


class LrSchedule:
    """Steps the trial's torch schedulers at the right moments and checkpoints them.

    Call `after_step()` once after every optimizer step and `after_eval(val_loss)` after
    every evaluation. From `swa.start_step` on, SWA's SWALR sets the lrs instead of the
    schedule. The scheduler is never stepped past the budget (OneCycleLR raises there).

    Resuming: build the optimizer, the SWA state and this schedule as for a fresh trial
    (building schedulers writes the optimizer's lrs), then load the optimizer's state,
    then this one's and SWA's.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        scheduler: LRScheduler | None,
        plateau: ReduceLROnPlateau | None,
        warmup_steps: int,
        total_steps: int,
        swa: SwaState | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.scheduler = scheduler  # stepped every step (for plateau: the warmup, if any)
        self.plateau = plateau
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.swa = swa
        self.steps = 0  # optimizer steps taken so far

    def swa_active(self) -> bool:
        return self.swa is not None and self.steps >= self.swa.start_step

    def after_step(self) -> None:
        self.steps += 1
        if self.swa is not None and self.swa_active():
            self.swa.scheduler.step()
        elif self.scheduler is None or self.steps > self.total_steps:
            return
        elif self.plateau is None or self.steps <= self.warmup_steps:
            self.scheduler.step()

    def after_eval(self, val_loss: float) -> None:
        # Evaluations during warmup or SWA say nothing about the schedule's own lr.
        if self.plateau is not None and self.steps >= self.warmup_steps and not self.swa_active():
            self.plateau.step(val_loss)

    def current_lrs(self) -> list[float]:
        """The lr of each param group for the next step (group 0 is the `lr` metric)."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.plateau is not None:
            self.plateau.load_state_dict(state["plateau"])


def build_schedule(
    spec: TrialSpec, optimizer: Optimizer, task: Task, swa: SwaState | None = None
) -> LrSchedule:
    """The trial's schedule over `optimizer`, built by `build_optimizer(spec, task)` and
    not stepped yet (its lrs already carry the lr_scaling factor and layer-decay scales)."""
    total = total_steps(spec, task)
    params = with_defaults(spec.schedule, total, spec.optimizer.lr)
    warmup = params.warmup_steps
    base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    context = ScheduleContext(
        # A warmup as long as the budget leaves the schedule nothing; 1 keeps torch happy.
        steps=max(1, total - warmup),
        factor=lr_factor(spec, effective_batch_size(spec, task)),
        scales=group_scales(spec, len(base_lrs)),
        base_lrs=base_lrs,
        cycle_momentum=uses_momentum(spec.optimizer),
    )
    if params.name == "constant" and warmup == 0:
        # Nothing ever changes the lr: no scheduler to step (ConstantLR's step costs as much
        # as a small model's whole optimizer step). SWA still brings its own SWALR.
        return LrSchedule(optimizer, None, None, 0, total, swa)
    ramp = None
    if warmup > 0:
        ramp = LinearLR(
            optimizer, start_factor=params.warmup_start_factor, end_factor=1.0, total_iters=warmup
        )
    main = SCHEDULE_BUILDERS[params.name](optimizer, params, context)
    if isinstance(main, ReduceLROnPlateau):
        return LrSchedule(optimizer, ramp, main, warmup, total, swa)
    if ramp is not None:
        main = SequentialLR(optimizer, [ramp, main], milestones=[warmup])
    return LrSchedule(optimizer, main, None, warmup, total, swa)
