"""Optimizers from specs: the registry covers the spec's, each maps onto its torch class
1:1 and trains digits; batch size, lr factor, layer decay, budgets and penalties."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from services.specs import OPTIMIZERS, TrialSpec
from workers.optim import (
    OPTIMIZER_BUILDERS,
    build_optimizer,
    build_training,
    effective_batch_size,
    l1_penalty,
    l2_in_loss,
    l2_penalty,
    lr_factor,
    param_groups,
    total_steps,
)
from workers.tasks import Task, build_task


def make_spec(**fields: Any) -> TrialSpec:
    data: dict[str, Any] = {"task": {"name": "digits", "hidden": [32]}, "seed": 3}
    data.update(fields)
    return TrialSpec.model_validate(data)


@pytest.fixture(scope="module")
def digits_size() -> int:
    return build_task(make_spec()).train_size


def full_loss(task: Task) -> float:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return float(task.loss(next(task.epoch_batches(task.train_size, generator))))


def test_registry_matches_spec_registry() -> None:
    assert set(OPTIMIZER_BUILDERS) == set(OPTIMIZERS)


TORCH_CLASSES = {
    "sgd": (torch.optim.SGD, {"lr": 0.2, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01}),
    "adagrad": (
        torch.optim.Adagrad,
        {"lr": 0.3, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-9},
    ),
    "rmsprop": (
        torch.optim.RMSprop,
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-7, "momentum": 0.2, "centered": True},
    ),
    "adam": (torch.optim.Adam, {"lr": 0.002, "betas": (0.8, 0.99), "eps": 1e-6, "amsgrad": True}),
    "adamw": (torch.optim.AdamW, {"lr": 0.002, "betas": (0.85, 0.9), "weight_decay": 0.05}),
    "lbfgs": (
        torch.optim.LBFGS,
        {"lr": 0.5, "max_iter": 7, "history_size": 9, "line_search_fn": "strong_wolfe"},
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_params_map_one_to_one(name: str) -> None:
    cls, params = TORCH_CLASSES[name]
    spec = make_spec(optimizer={"name": name, **params})
    optimizer = build_optimizer(spec, build_task(spec))
    assert type(optimizer) is cls
    for key, value in params.items():
        assert optimizer.defaults[key] == value, key


# A sane lr for each optimizer on digits (batch 64, ~30 steps).
SANE = {
    "sgd": {"lr": 0.1, "momentum": 0.9},
    "adagrad": {"lr": 0.05},
    "rmsprop": {"lr": 0.001},
    "adam": {"lr": 0.003},
    "adamw": {"lr": 0.003},
}


@pytest.mark.parametrize("name", sorted(SANE))
def test_each_optimizer_trains_digits(name: str) -> None:
    spec = make_spec(optimizer={"name": name, **SANE[name]}, batch_size=64)
    task = build_task(spec)
    training = build_training(spec, task)
    before = full_loss(task)
    generator = torch.Generator().manual_seed(1)
    for batch in list(task.epoch_batches(64, generator))[:30]:
        training.optimizer.zero_grad()
        task.loss(batch).backward()
        training.optimizer.step()
        training.schedule.after_step()
    assert full_loss(task) < 0.6 * before


def test_lbfgs_trains_with_a_closure_and_weight_decay_in_the_loss() -> None:
    spec = make_spec(
        optimizer={"name": "lbfgs", "lr": 1.0, "max_iter": 10, "weight_decay": 1e-3},
        batch_size="full",
    )
    task = build_task(spec)
    training = build_training(spec, task)
    # torch's LBFGS has no weight decay: the runner adds it to the loss.
    assert "weight_decay" not in training.optimizer.defaults
    assert training.l2_in_loss == 1e-3
    assert training.steps_per_epoch == 1
    before = full_loss(task)
    batch = next(task.epoch_batches(task.train_size, torch.Generator().manual_seed(0)))

    def closure() -> torch.Tensor:
        training.optimizer.zero_grad()
        loss = task.loss(batch) + l2_penalty(task.model, training.l2_in_loss)
        loss.backward()
        return loss

    for _ in range(5):
        training.optimizer.step(closure)
        training.schedule.after_step()
    assert full_loss(task) < 0.3 * before


def test_lbfgs_refuses_layer_decay() -> None:
    # The spec refuses the pair at submission; the builder's own guard backs it up.
    with pytest.raises(ValueError, match="layer_decay"):
        spec = make_spec(optimizer="lbfgs", regularization={"layer_decay": 0.5})
        build_optimizer(spec, build_task(spec))


def test_layer_decay_groups_output_first() -> None:
    spec = make_spec(
        task={"name": "digits", "hidden": [32, 16]},
        optimizer={"name": "adam", "lr": 0.01},
        regularization={"layer_decay": 0.5},
        batch_size=64,
    )
    task = build_task(spec)
    training = build_training(spec, task)
    groups = training.optimizer.param_groups
    linears = [m for m in task.model if isinstance(m, nn.Linear)][::-1]
    # Group 0 is the output layer at the full lr (the `lr` metric); then towards the input.
    assert [g["params"] for g in groups] == [list(m.parameters()) for m in linears]
    assert [g["lr"] for g in groups] == [0.01, 0.005, 0.0025]

    before = full_loss(task)
    for i, batch in enumerate(list(task.epoch_batches(64, torch.Generator().manual_seed(1)))[:30]):
        weights = [m.weight.detach().clone() for m in linears]
        training.optimizer.zero_grad()
        task.loss(batch).backward()
        training.optimizer.step()
        training.schedule.after_step()
        if i == 0:
            # Adam's first step moves a weight by lr * g / (|g| + eps): lr where g != 0.
            moved = [
                float((m.weight.detach() - w).abs().max())
                for m, w in zip(linears, weights, strict=True)
            ]
            assert moved == pytest.approx([0.01, 0.005, 0.0025], rel=1e-3)
    assert full_loss(task) < 0.75 * before
    assert training.schedule.current_lrs() == [0.01, 0.005, 0.0025]


@pytest.mark.parametrize(
    ("task", "layers"),
    [
        ({"name": "digits", "model": "mlp"}, 2),
        ({"name": "digits", "model": "cnn"}, 4),
        ({"name": "regression"}, 3),
        ({"name": "text", "model": "lstm"}, 3),
        ({"name": "text", "model": "transformer"}, 3),
        ({"name": "cartpole"}, 2),
    ],
)
def test_layer_groups_cover_every_parameter_once(task: dict[str, Any], layers: int) -> None:
    spec = make_spec(task=task, regularization={"layer_decay": 0.9})
    groups = param_groups(spec, build_task(spec))  # raises if a parameter is missing
    assert len(groups) == layers
    assert [g["lr"] for g in groups] == pytest.approx([0.01 * 0.9**i for i in range(layers)])


def test_effective_batch_size_and_steps_per_epoch(digits_size: int) -> None:
    cases = [(1, digits_size), (32, math.ceil(digits_size / 32)), ("full", 1), (10**6, 1)]
    for batch_size, steps in cases:
        spec = make_spec(batch_size=batch_size, budget={"epochs": 3})
        task = build_task(spec)
        size = effective_batch_size(spec, task)
        assert size == (digits_size if batch_size in ("full", 10**6) else batch_size)
        assert task.batches_per_epoch(size) == steps
        assert total_steps(spec, task) == 3 * steps
        # The epoch really has that many batches, and together they are the training split.
        batches = list(task.epoch_batches(size, torch.Generator().manual_seed(0)))
        assert len(batches) == steps
        assert sum(task.batch_examples(b) for b in batches) == digits_size
        rows = torch.cat([b[0] for b in batches])
        assert torch.allclose(rows.sum(0), task.train_x.sum(0), atol=1e-3)


def test_cartpole_batches_are_always_the_episodes_per_update() -> None:
    spec = make_spec(
        task={"name": "cartpole", "episodes_per_update": 8},
        batch_size=256,
        lr_scaling={"rule": "linear", "base_batch_size": 4},
    )
    task = build_task(spec)
    assert effective_batch_size(spec, task) == 8
    assert lr_factor(spec, 8) == 2.0
    assert build_optimizer(spec, task).param_groups[0]["lr"] == pytest.approx(2 * 0.01)


def test_lr_factor_rules() -> None:
    linear = make_spec(lr_scaling={"rule": "linear", "base_batch_size": 32})
    sqrt = make_spec(lr_scaling={"rule": "sqrt", "base_batch_size": 32})
    assert lr_factor(make_spec(), 256) == 1.0
    assert lr_factor(linear, 256) == 8.0
    assert lr_factor(sqrt, 128) == 2.0
    spec = make_spec(
        batch_size=128,
        lr_scaling={"rule": "sqrt", "base_batch_size": 32},
        optimizer={"name": "sgd", "lr": 0.05},
    )
    assert build_optimizer(spec, build_task(spec)).param_groups[0]["lr"] == pytest.approx(0.1)


def test_total_steps_from_max_steps() -> None:
    spec = make_spec(budget={"max_steps": 123})
    assert total_steps(spec, build_task(spec)) == 123


def test_weight_decay_from_either_field() -> None:
    for fields in (
        {"regularization": {"l2": 0.01}},
        {"optimizer": {"name": "sgd", "weight_decay": 0.01}},
    ):
        spec = make_spec(**fields)
        assert build_optimizer(spec, build_task(spec)).defaults["weight_decay"] == 0.01
        assert l2_in_loss(spec) == 0.0
    assert l2_in_loss(make_spec(optimizer="lbfgs", regularization={"l2": 0.02})) == 0.02


def test_penalties() -> None:
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        model.bias.copy_(torch.tensor([-0.5, 2.0]))
    assert float(l1_penalty(model, 0.1).detach()) == pytest.approx(0.1 * 10.0)
    assert float(l1_penalty(model, 0.0)) == 0.0
    penalty = l2_penalty(model, 0.2)
    penalty.backward()
    # Its gradient is exactly what torch's weight_decay adds: coefficient * w.
    assert torch.allclose(model.weight.grad, 0.2 * model.weight)
    assert torch.allclose(model.bias.grad, 0.2 * model.bias)
    assert float(l2_penalty(model, 0.0)) == 0.0
