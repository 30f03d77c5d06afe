"""What the analyzer knows about how a run was configured (RunContext).

Everything is optional: a run logged through the SDK from elsewhere has no spec, and the
rules then judge from the series alone. `from_spec` reads a stored TrialSpec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.specs import TrialSpec, effective_weight_decay
from services.specs.schedule_defaults import with_defaults

__all__ = ["CYCLICAL_SCHEDULES", "RunContext"]

# Schedules that raise the lr by design: a loss rise that follows an lr rise is expected.
CYCLICAL_SCHEDULES = frozenset({"cyclic", "cosine_restarts", "one_cycle"})

# How much stricter every margin is for a trial still running: its curve may yet recover.
RUNNING_MARGIN = 1.5


@dataclass(frozen=True)
class RunContext:
    """The spec values the rules use; the lr series, when logged, is trusted over `lr`."""

    lr: float | None = None  # the spec's base lr (optimizer.lr), before lr_scaling
    optimizer: str | None = None
    schedule: str | None = None
    warmup_steps: int = 0
    swa_start_step: int | None = None
    total_steps: int | None = None  # the budget, in optimizer steps
    batch_size: int | None = None  # None: "full" batch or unknown
    running: bool = False
    max_lr: float | None = None  # the peak of a cyclic / one_cycle schedule
    momentum: float | None = None  # sgd / rmsprop only
    nesterov: bool = False  # sgd only
    dampening: float = 0.0  # sgd only
    weight_decay: float | None = None
    # Where weight decay lives in the spec: both places are exclusive, so a recommendation
    # must raise the one already in use (adamw's is decoupled and lives on the optimizer).
    weight_decay_path: str = "regularization.l2"
    dropout: float | None = None
    grad_clip_norm: float | None = None
    hidden: tuple[int, ...] | None = None  # the task's hidden widths, where it has them
    # Why the run ended early, when it did ("diverged: ..." from the worker's blow-up stop).
    stop_reason: str | None = None
    activation: str | None = None  # the dense layers' activation, where the task has one
    init_scale: float | None = None  # multiplier on the default init, where the task has one

    @property
    def cyclical(self) -> bool:
        return self.schedule in CYCLICAL_SCHEDULES

    @property
    def stopped_diverged(self) -> bool:
        """The worker ended the run because its loss blew up (non-finite or far above)."""
        return bool(self.stop_reason and self.stop_reason.startswith("diverged"))

    @property
    def margin(self) -> float:
        """Multiplier on every detection threshold: conservative while the run is live."""
        return RUNNING_MARGIN if self.running else 1.0

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any] | TrialSpec,
        *,
        running: bool = False,
        total_steps: int | None = None,
        steps_per_epoch: int | None = None,
    ) -> RunContext:
        """The context of a stored TrialSpec (its JSON, or the model).

        A budget or SWA start in epochs becomes steps only with `steps_per_epoch` (it
        depends on the task's data size); `total_steps` overrides the budget outright."""
        ts = spec if isinstance(spec, TrialSpec) else TrialSpec.model_validate(dict(spec))
        opt, sched, reg = ts.optimizer, ts.schedule, ts.regularization
        if total_steps is None:
            if ts.budget.max_steps is not None:
                total_steps = ts.budget.max_steps
            elif ts.budget.epochs is not None and steps_per_epoch is not None:
                total_steps = ts.budget.epochs * steps_per_epoch
        swa_start: int | None = None
        if reg.swa is not None:
            if reg.swa.start_step is not None:
                swa_start = reg.swa.start_step
            elif reg.swa.start_epoch is not None and steps_per_epoch is not None:
                swa_start = reg.swa.start_epoch * steps_per_epoch
        decoupled = opt.name == "adamw" or opt.weight_decay > 0
        momentum = getattr(opt, "momentum", None)
        dampening = getattr(opt, "dampening", 0.0)
        # Derived lengths and peaks (a schedule named alone) as the worker derives them; a
        # warmup_fraction has a length only once the budget's steps are known.
        derived = with_defaults(sched, total_steps or 1, opt.lr)
        warmup_steps = derived.warmup_steps if total_steps else sched.warmup_steps
        max_lr = getattr(derived, "max_lr", None)
        hidden = getattr(ts.task, "hidden", None)
        activation = getattr(ts.task, "activation", None)
        init_scale = getattr(ts.task, "init_scale", None)
        return cls(
            lr=opt.lr,
            optimizer=opt.name,
            schedule=sched.name,
            warmup_steps=warmup_steps,
            swa_start_step=swa_start,
            total_steps=total_steps,
            batch_size=ts.batch_size if isinstance(ts.batch_size, int) else None,
            running=running,
            max_lr=float(max_lr) if isinstance(max_lr, int | float) else None,
            momentum=float(momentum) if isinstance(momentum, int | float) else None,
            nesterov=getattr(opt, "nesterov", False) is True,
            dampening=float(dampening) if isinstance(dampening, int | float) else 0.0,
            weight_decay=effective_weight_decay(ts),
            weight_decay_path="optimizer.weight_decay" if decoupled else "regularization.l2",
            dropout=reg.dropout,
            grad_clip_norm=reg.grad_clip_norm,
            hidden=tuple(int(w) for w in hidden) if isinstance(hidden, list) else None,
            activation=activation if isinstance(activation, str) else None,
            init_scale=float(init_scale) if isinstance(init_scale, int | float) else None,
        )
