"""Model options of the dense tasks: hidden activation, initial weight scale and (digits) a
training subset. The defaults build the very model they built before the options."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from services.specs import TrialSpec
from workers.tasks import DatasetTask, build_task


def task_of(task: dict[str, Any], seed: int = 3) -> DatasetTask:
    built = build_task(TrialSpec.model_validate({"task": task, "seed": seed}))
    assert isinstance(built, DatasetTask)
    return built


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("name", ["digits", "regression"])
def test_init_scale_multiplies_weights_and_leaves_biases(name: str) -> None:
    base = task_of({"name": name, "hidden": [16, 16]})
    scaled = task_of({"name": name, "hidden": [16, 16], "init_scale": 0.1})
    explicit = task_of({"name": name, "hidden": [16, 16], "init_scale": 1.0})
    pairs = list(zip(linears(base.model), linears(scaled.model), strict=True))
    assert len(pairs) == 3
    for a, b in pairs:
        assert torch.allclose(b.weight, 0.1 * a.weight, rtol=1e-6, atol=0)
        assert torch.equal(a.bias, b.bias)
    for a, c in zip(linears(base.model), linears(explicit.model), strict=True):
        assert torch.equal(a.weight, c.weight)


@pytest.mark.parametrize(
    ("activation", "module"), [("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid)]
)
@pytest.mark.parametrize("name", ["digits", "regression"])
def test_activation_after_every_hidden_layer(
    name: str, activation: str, module: type[nn.Module]
) -> None:
    task = task_of({"name": name, "hidden": [8, 8, 8], "activation": activation})
    kinds = [type(m) for m in task.model.modules() if not isinstance(m, nn.Sequential)]
    assert kinds.count(module) == 3
    assert {nn.ReLU, nn.Tanh, nn.Sigmoid} & set(kinds) == {module}


def test_cnn_head_takes_the_activation() -> None:
    task = task_of({"name": "digits", "model": "cnn", "hidden": [8], "activation": "tanh"})
    head = task.model.head  # type: ignore[union-attr]
    assert any(isinstance(m, nn.Tanh) for m in head.modules())


def test_train_subset_keeps_the_held_out_split() -> None:
    full = task_of({"name": "digits"})
    small = task_of({"name": "digits", "train_subset": 100})
    assert small.train_size == 100 and full.train_size > 100
    assert torch.equal(small.train_x, full.train_x[:100])
    assert torch.equal(small.val_x, full.val_x)
    # Every class appears in the first rows of the stratified, shuffled split.
    assert set(small.train_y.tolist()) == set(range(10))
    assert task_of({"name": "digits", "train_subset": 1797}).train_size == full.train_size


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"name": "digits", "activation": "gelu"}, "task.activation"),
        ({"name": "regression", "init_scale": 0}, "task.init_scale"),
        ({"name": "regression", "init_scale": 1000}, "task.init_scale"),
        ({"name": "digits", "train_subset": 5}, "task.train_subset"),
    ],
)
def test_options_are_validated(task: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TrialSpec.model_validate({"task": task})
    assert field in str(err.value).replace("\n", " ")
