"""A plain torch training loop, as a user would write one, recording what users log.

Logged for the analyzer (the names an external run posts): train_loss, lr and grad_norm
(global L2 norm before clipping) every step; val_loss and val_accuracy every evaluation.
Recorded for labelling only: test_loss at each evaluation and the input-side and
output-side layers' gradient norms every `layer_every` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.families.data import Task
from bench.families.models import build

__all__ = ["Run", "train"]


@dataclass
class Run:
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    hidden: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)  # labels only

    def add(self, where: dict, name: str, step: int, value: float) -> None:
        steps, values = where.setdefault(name, ([], []))
        steps.append(step)
        values.append(value)


def _optimizer(params, opt: dict[str, Any], lr: float) -> torch.optim.Optimizer:
    name, wd = opt["name"], opt.get("weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=opt.get("momentum", 0.0),
            nesterov=opt.get("nesterov", False),
            weight_decay=wd,
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd or 0.01)
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, momentum=opt.get("momentum", 0.0), weight_decay=wd
        )
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise ValueError(name)


def _schedule(optim: torch.optim.Optimizer, sched: dict[str, Any], steps: int, lr: float):
    S = torch.optim.lr_scheduler
    name = sched.get("name", "constant")
    warm = int(sched.get("warmup", 0))
    if name == "constant":
        main = S.LambdaLR(optim, lambda _: 1.0)
    elif name == "cosine":
        main = S.CosineAnnealingLR(optim, max(1, steps - warm))
    elif name == "step":
        main = S.StepLR(optim, max(1, steps // 3), gamma=0.1)
    elif name == "restarts":
        main = S.CosineAnnealingWarmRestarts(optim, max(1, steps // 4))
    elif name == "cyclic":
        return S.CyclicLR(optim, lr / 10, lr, step_size_up=max(1, steps // 8), cycle_momentum=False)
    elif name == "one_cycle":
        return S.OneCycleLR(optim, lr, total_steps=steps + 1, cycle_momentum=False)
    else:
        raise ValueError(name)
    if not warm:
        return main
    # A warmup longer than the run (sched["warmup"] > steps) never reaches the lr.
    ramp = S.LambdaLR(optim, lambda s: min(1.0, (s + 1) / warm))
    if warm >= steps:
        return ramp
    return S.SequentialLR(optim, [ramp, main], milestones=[warm])


def _loss_fn(task: Task) -> nn.Module:
    return nn.CrossEntropyLoss() if task.classes else nn.MSELoss()


def _evaluate(model: nn.Module, task: Task, split: int) -> tuple[float, float | None]:
    model.eval()
    with torch.no_grad():
        out = model(task.x[split])
        loss = float(_loss_fn(task)(out, task.y[split]))
        acc = float((out.argmax(1) == task.y[split]).float().mean()) if task.classes else None
    model.train()
    return loss, acc


def _owners(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameter groups per module that owns parameters, input side first."""
    groups = []
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own:
            groups.append(own)
    return groups


def train(task: Task, spec: dict[str, Any], lr: float, seed: int) -> Run:
    """Train `spec` (model, optimizer, schedule, batch, steps, clip) on `task` at `lr`.

    A non-finite loss is recorded and ends the run, as a user's loop (or lrlab's runner)
    would stop."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = build(task, spec["model"])
    steps = int(spec["steps"])
    optim = _optimizer(model.parameters(), spec["optimizer"], lr)
    sched = _schedule(optim, spec.get("schedule", {}), steps, lr)
    loss_fn = _loss_fn(task)
    x, y = task.x[0], task.y[0]
    n = len(x)
    batch = n if spec["batch"] == "full" else int(spec["batch"])
    eval_every = max(5, steps // 40)
    layer_every = max(1, steps // 400)
    owners = _owners(model)
    params = [p for group in owners for p in group]
    gen = torch.Generator().manual_seed(seed)
    perm, cursor = torch.randperm(n, generator=gen), 0
    run = Run()
    for step in range(steps):
        if batch >= n:
            xb, yb = x, y
        else:
            if cursor + batch > n:
                perm, cursor = torch.randperm(n, generator=gen), 0
            idx = perm[cursor : cursor + batch]
            cursor += batch
            xb, yb = x[idx], y[idx]
        optim.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        value = loss.item()
        run.add(run.series, "lr", step, optim.param_groups[0]["lr"])
        run.add(run.series, "train_loss", step, value)
        if not math.isfinite(value):
            break
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        norm = float(
            torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        )
        run.add(run.series, "grad_norm", step, norm)
        if step % layer_every == 0:
            for where, group in (("first", owners[0]), ("last", owners[-1])):
                g = [p.grad for p in group if p.grad is not None]
                layer = float(
                    torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in g]))
                )
                run.add(run.hidden, f"layer_{where}", step, layer)
        clip = spec.get("clip")
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optim.step()
        sched.step()
        if step % eval_every == 0 or step == steps - 1:
            val, acc = _evaluate(model, task, 1)
            run.add(run.series, "val_loss", step, val)
            if acc is not None:
                run.add(run.series, "val_accuracy", step, acc)
            run.add(run.hidden, "test_loss", step, _evaluate(model, task, 2)[0])
            if not math.isfinite(val):
                break
    return run
