"""How many examples a step sees, how many steps a trial runs, and the lr factor of both."""

from __future__ import annotations

from services.specs import TrialSpec, scaled_lr
from workers.tasks import Task

__all__ = ["effective_batch_size", "lr_factor", "steps_per_epoch", "total_steps"]


def effective_batch_size(spec: TrialSpec, task: Task) -> int:
    """Examples per optimizer step: batch_size, capped at the training split's size.

    "full", a batch_size above the split's size, and any batch_size of a task whose batches
    are fixed (cartpole: an update is always `episodes_per_update` episodes) all mean the
    whole split, so the lr scaling sees the batch the optimizer actually gets."""
    if spec.batch_size == "full" or task.fixed_batches:
        return task.train_size
    return min(spec.batch_size, task.train_size)


def lr_factor(spec: TrialSpec, batch_size: int) -> float:
    """What lr_scaling multiplies every lr of the trial by at `batch_size` (1.0 for none)."""
    return scaled_lr(1.0, batch_size, spec.lr_scaling)


def steps_per_epoch(spec: TrialSpec, task: Task) -> int:
    return task.batches_per_epoch(effective_batch_size(spec, task))


def total_steps(spec: TrialSpec, task: Task) -> int:
    """Optimizer steps in the whole budget: max_steps, or epochs x batches per epoch."""
    if spec.budget.max_steps is not None:
        return spec.budget.max_steps
    assert spec.budget.epochs is not None  # the spec requires exactly one of the two
    return spec.budget.epochs * steps_per_epoch(spec, task)
