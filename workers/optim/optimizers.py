"""torch.optim optimizers from a trial spec: param groups, one builder per optimizer name,
and the loss penalties the runner adds (L1; L2 for L-BFGS, which has no weight decay).

Param groups: with `regularization.layer_decay` each layer of the task is its own group,
ordered OUTPUT FIRST: group 0 is the last layer and has the full lr (so the `lr` metric,
which is group 0's, is the headline lr); group i has lr * layer_decay**i. Without
layer_decay there is one group. Absolute lrs elsewhere in the trial (schedule, SWA) are
scaled per group by the same `group_scales`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from services.specs import (
    AdagradParams,
    AdamParams,
    AdamWParams,
    LBFGSParams,
    OptimizerParams,
    RMSpropParams,
    SGDParams,
    TrialSpec,
    effective_weight_decay,
)
from workers.optim.budget import effective_batch_size, lr_factor
from workers.tasks import Task

__all__ = [
    "OPTIMIZER_BUILDERS",
    "OptimizerBuilder",
    "build_optimizer",
    "group_scales",
    "l1_penalty",
    "l2_in_loss",
    "l2_penalty",
    "param_groups",
    "uses_momentum",
]

ParamGroups = list[dict[str, Any]]
# (param groups with their "lr", the optimizer's params, lr, weight decay) -> optimizer
OptimizerBuilder = Callable[[ParamGroups, Any, float, float], torch.optim.Optimizer]


def group_scales(spec: TrialSpec, n_groups: int) -> list[float]:
    """Each param group's lr relative to group 0 (all 1.0 without layer_decay)."""
    decay = spec.regularization.layer_decay
    return [1.0 if decay is None else decay**i for i in range(n_groups)]


def param_groups(spec: TrialSpec, task: Task) -> ParamGroups:
    """torch param groups with their lrs (already times the lr_scaling factor)."""
    lr = spec.optimizer.lr * lr_factor(spec, effective_batch_size(spec, task))
    if spec.regularization.layer_decay is None:
        return [{"params": list(task.model.parameters()), "lr": lr}]
    layers = task.layer_groups()[::-1]  # output first: see the module docstring
    grouped = [id(p) for layer in layers for p in layer]
    everything = {id(p) for p in task.model.parameters()}
    if len(grouped) != len(set(grouped)) or set(grouped) != everything:
        # A parameter left out would silently never train; one listed twice fails in torch.
        raise RuntimeError(f"{type(task).__name__}.layer_groups must list each parameter once")
    scales = group_scales(spec, len(layers))
    return [
        {"params": params, "lr": lr * scale} for params, scale in zip(layers, scales, strict=True)
    ]


def _sgd(groups: ParamGroups, p: SGDParams, lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=p.momentum,
        dampening=p.dampening,
        weight_decay=wd,
        nesterov=p.nesterov,
    )


def _adagrad(groups: ParamGroups, p: AdagradParams, lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(
        groups,
        lr=lr,
        lr_decay=p.lr_decay,
        weight_decay=wd,
        initial_accumulator_value=p.initial_accumulator_value,
        eps=p.eps,
    )


def _rmsprop(groups: ParamGroups, p: RMSpropParams, lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        groups,
        lr=lr,
        alpha=p.alpha,
        eps=p.eps,
        weight_decay=wd,
        momentum=p.momentum,
        centered=p.centered,
    )


def _adam(groups: ParamGroups, p: AdamParams, lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        groups, lr=lr, betas=p.betas, eps=p.eps, weight_decay=wd, amsgrad=p.amsgrad
    )


def _adamw(groups: ParamGroups, p: AdamWParams, lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        groups, lr=lr, betas=p.betas, eps=p.eps, weight_decay=wd, amsgrad=p.amsgrad
    )


def _lbfgs(groups: ParamGroups, p: LBFGSParams, lr: float, wd: float) -> torch.optim.Optimizer:
    # torch's LBFGS takes a single param group and no weight decay (wd goes in the loss,
    # see l2_in_loss); build_optimizer has checked both.
    if len(groups) != 1:
        raise ValueError("lbfgs supports a single param group (no layer_decay)")
    return torch.optim.LBFGS(
        groups[0]["params"],
        lr=groups[0]["lr"],
        max_iter=p.max_iter,
        history_size=p.history_size,
        tolerance_grad=p.tolerance_grad,
        tolerance_change=p.tolerance_change,
        line_search_fn=p.line_search_fn,
    )


OPTIMIZER_BUILDERS: dict[str, OptimizerBuilder] = {
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
    "lbfgs": _lbfgs,
}


def build_optimizer(spec: TrialSpec, task: Task) -> torch.optim.Optimizer:
    """The trial's optimizer over the task's model (move the task to its device first).

    L-BFGS: step it with a closure, and add `l2_penalty(model, l2_in_loss(spec))` to the
    loss in it. Raises ValueError for layer_decay with lbfgs (torch's LBFGS has one group).
    """
    params = spec.optimizer
    if isinstance(params, LBFGSParams) and spec.regularization.layer_decay is not None:
        raise ValueError(
            "regularization.layer_decay: lbfgs has a single param group, so it cannot give "
            "layers different lrs; unset layer_decay or choose another optimizer"
        )
    groups = param_groups(spec, task)
    wd = 0.0 if isinstance(params, LBFGSParams) else effective_weight_decay(spec)
    return OPTIMIZER_BUILDERS[params.name](groups, params, groups[0]["lr"], wd)


def uses_momentum(params: OptimizerParams) -> bool:
    """Whether the optimizer has a momentum a cyclic schedule may cycle: Adam's beta1, or an
    SGD/RMSprop momentum the user turned on (cycling would switch on one left at 0)."""
    if isinstance(params, AdamParams | AdamWParams):
        return True
    if isinstance(params, SGDParams | RMSpropParams):
        return params.momentum > 0
    return False


def l2_in_loss(spec: TrialSpec) -> float:
    """The L2 coefficient the runner must add to the loss itself: the weight decay of an
    L-BFGS trial (torch's LBFGS has none); 0 for every other optimizer."""
    return effective_weight_decay(spec) if isinstance(spec.optimizer, LBFGSParams) else 0.0


def _total(model: nn.Module, term: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    params = list(model.parameters())
    total = torch.zeros((), device=params[0].device if params else None)
    for p in params:
        total = total + term(p).sum()
    return total


def l2_penalty(model: nn.Module, coefficient: float) -> torch.Tensor:
    """coefficient/2 * sum of w^2 over all parameters: its gradient, coefficient * w, is
    exactly what torch's weight_decay adds, so L-BFGS gets the same decay as the others."""
    if coefficient == 0:
        return torch.zeros(())
    return 0.5 * coefficient * _total(model, torch.square)


def l1_penalty(model: nn.Module, l1: float) -> torch.Tensor:
    """l1 * sum of |w| over every parameter (biases too, like torch's weight_decay)."""
    if l1 == 0:
        return torch.zeros(())
    return l1 * _total(model, torch.abs)
