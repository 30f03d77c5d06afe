"""SWA: from its start SWALR drives the lr (as torch's SWALR does, built by hand here) and
the averaged weights are the mean of the weights after each SWA-phase step."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler as sched
from torch.optim.swa_utils import SWALR

from services.specs import TrialSpec
from workers.optim import build_training
from workers.tasks import Task, build_task

STEPS = 30
START = 10


def make_spec(**fields: Any) -> TrialSpec:
    data: dict[str, Any] = {
        "task": {"name": "digits", "hidden": [16]},
        "optimizer": {"name": "sgd", "lr": 0.2, "momentum": 0.9},
        "schedule": {"name": "cosine"},
        "budget": {"max_steps": STEPS},
        "regularization": {
            "swa": {
                "start_step": START,
                "swa_lr": 0.05,
                "anneal_steps": 5,
                "anneal_strategy": "cos",
            }
        },
        "seed": 2,
    }
    data.update(fields)
    return TrialSpec.model_validate(data)


def batches(task: Task, steps: int) -> list[Any]:
    generator = torch.Generator().manual_seed(0)
    out: list[Any] = []
    while len(out) < steps:
        out.extend(task.epoch_batches(32, generator))
    return out[:steps]


def test_swa_drives_the_lr_and_averages_the_phase() -> None:
    spec = make_spec()
    task = build_task(spec)
    training = build_training(spec, task)
    assert training.swa is not None
    lrs, snapshots = [], []
    for step, batch in enumerate(batches(task, STEPS), start=1):
        lrs.append(training.schedule.current_lrs()[0])
        training.optimizer.zero_grad()
        task.loss(batch).backward()
        training.optimizer.step()
        training.schedule.after_step()
        training.swa.after_step(training.schedule.steps)
        if step > START:  # the step just taken had index >= START
            snapshots.append([p.detach().clone() for p in task.model.parameters()])

    # The torch way, by hand: the schedule until the SWA start, then SWALR.
    reference = build_task(spec)
    opt = torch.optim.SGD(reference.model.parameters(), lr=0.2, momentum=0.9)
    cosine = sched.CosineAnnealingLR(opt, T_max=STEPS)
    swalr = SWALR(opt, swa_lr=0.05, anneal_epochs=5, anneal_strategy="cos")
    reference_lrs = []
    for step in range(1, STEPS + 1):
        reference_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if step >= START:
            swalr.step()
        else:
            cosine.step()
    assert lrs == pytest.approx(reference_lrs, rel=1e-12, abs=0)
    assert lrs[-1] == pytest.approx(0.05)  # annealed to swa_lr

    assert training.swa.n_averaged == STEPS - START == len(snapshots)
    averaged = training.swa.finalize(task)
    assert averaged is not None
    for i, (avg, now) in enumerate(
        zip(averaged.parameters(), task.model.parameters(), strict=True)
    ):
        mean = torch.stack([snapshot[i] for snapshot in snapshots]).mean(0)
        assert torch.allclose(avg, mean, atol=1e-6)
        assert not torch.equal(avg, now)
    swa_metrics = task.evaluate(averaged)
    assert math.isfinite(swa_metrics["val_loss"])
    assert swa_metrics != task.evaluate()


def test_swa_start_epoch_and_scaled_lr() -> None:
    spec = make_spec(
        regularization={"swa": {"start_epoch": 1, "swa_lr": 0.05}},
        budget={"epochs": 2},
        batch_size=128,
        lr_scaling={"rule": "linear", "base_batch_size": 32},
    )
    task = build_task(spec)
    training = build_training(spec, task)
    assert training.swa is not None
    assert training.swa.start_step == task.batches_per_epoch(128) == training.steps_per_epoch
    for _ in range(training.total_steps):
        training.optimizer.step()
        training.schedule.after_step()
        training.swa.after_step(training.schedule.steps)
    # swa_lr, like every lr, times the lr factor (128 / 32 = 4).
    assert training.schedule.current_lrs()[0] == pytest.approx(4 * 0.05)


def test_finalize_before_the_start_is_none() -> None:
    spec = make_spec()
    task = build_task(spec)
    training = build_training(spec, task)
    assert training.swa is not None
    for _ in range(START):
        training.optimizer.step()
        training.schedule.after_step()
        training.swa.after_step(training.schedule.steps)
    assert training.swa.n_averaged == 0
    assert training.swa.finalize(task) is None


def test_finalize_recomputes_batchnorm_statistics() -> None:
    spec = make_spec(task={"name": "digits", "model": "cnn", "hidden": []})
    task = build_task(spec)
    training = build_training(spec, task)
    assert training.swa is not None
    for step, batch in enumerate(batches(task, STEPS), start=1):
        training.optimizer.zero_grad()
        task.loss(batch).backward()
        training.optimizer.step()
        training.schedule.after_step()
        training.swa.after_step(step)
    averaged = training.swa.finalize(task)
    assert averaged is not None
    norm = averaged.block1[1]
    # The copy's running stats were those of the model at build time (mean 0, var 1);
    # update_bn replaced them with the averaged weights' statistics over the training split.
    assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))
    assert math.isfinite(task.evaluate(averaged)["val_loss"])


def test_swa_state_round_trips() -> None:
    spec = make_spec()
    task = build_task(spec)
    training = build_training(spec, task)
    assert training.swa is not None
    for step, batch in enumerate(batches(task, 15), start=1):
        training.optimizer.zero_grad()
        task.loss(batch).backward()
        training.optimizer.step()
        training.schedule.after_step()
        training.swa.after_step(step)
    state = training.swa.state_dict()
    fresh = build_training(spec, task)
    assert fresh.swa is not None
    fresh.swa.load_state_dict(state)
    assert fresh.swa.n_averaged == training.swa.n_averaged == 5
    for a, b in zip(
        fresh.swa.averaged.parameters(), training.swa.averaged.parameters(), strict=True
    ):
        assert torch.equal(a, b)
