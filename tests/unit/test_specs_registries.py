"""Optimizer, schedule and task registries: names, defaults, per-entry rules."""

from __future__ import annotations

import math

import pytest

from services.specs import (
    OPTIMIZERS,
    SCHEDULES,
    TASKS,
    AdamParams,
    AdamWParams,
    ConstantSchedule,
    CosineSchedule,
    DigitsTask,
    LBFGSParams,
    SGDParams,
    TrialSpec,
    describe_registry,
)
from services.specs.registry import RegistryParams
from tests.support.specs import assert_rejected, trial


@pytest.mark.parametrize("registry", [OPTIMIZERS, SCHEDULES, TASKS])
def test_every_entry_is_named_by_its_key_and_documented(
    registry: dict[str, type[RegistryParams]],
) -> None:
    for name, model in registry.items():
        assert model.entry_name() == name
        assert model.__doc__


@pytest.mark.parametrize("registry", [OPTIMIZERS, SCHEDULES, TASKS])
def test_bare_names_validate_with_defaults_where_possible(
    registry: dict[str, type[RegistryParams]],
) -> None:
    for name, model in registry.items():
        required = [f for f, info in model.model_fields.items() if info.is_required()]
        if required == ["name"]:
            assert model.model_validate({"name": name}).name == name


def test_torch_default_learning_rates() -> None:
    defaults = {name: model.model_validate({"name": name}).lr for name, model in OPTIMIZERS.items()}
    assert defaults == {
        "sgd": 1e-3,
        "adagrad": 1e-2,
        "rmsprop": 1e-2,
        "adam": 1e-3,
        "adamw": 1e-3,
        "lbfgs": 1.0,
    }
    assert AdamWParams().weight_decay == 0.01
    assert AdamParams().weight_decay == 0.0
    assert AdamParams().betas == (0.9, 0.999)
    assert LBFGSParams().history_size == 100


@pytest.mark.parametrize("lr", [0, -0.1])
def test_lr_must_be_positive(lr: float) -> None:
    assert_rejected(
        TrialSpec, trial(optimizer={"name": "adam", "lr": lr}), "optimizer.lr", "greater than 0"
    )


@pytest.mark.parametrize("lr", [math.nan, math.inf, -math.inf])
def test_lr_must_be_finite(lr: float) -> None:
    assert_rejected(
        TrialSpec, trial(optimizer={"name": "sgd", "lr": lr}), "optimizer.lr", "finite number"
    )


def test_unknown_optimizer_lists_valid_names() -> None:
    assert_rejected(
        TrialSpec,
        trial(optimizer={"name": "nadam", "lr": 0.1}),
        "optimizer.name: unknown optimizer 'nadam'",
        "valid names: adagrad, adam, adamw, lbfgs, rmsprop, sgd",
    )


def test_optimizer_without_name() -> None:
    assert_rejected(
        TrialSpec, trial(optimizer={"lr": 0.1}), "optimizer.name", "needs a 'name'", "sgd"
    )


def test_momentum_with_adam_is_an_unknown_key() -> None:
    assert_rejected(
        TrialSpec,
        trial(optimizer={"name": "adam", "lr": 1e-3, "momentum": 0.9}),
        "optimizer.momentum: unknown key 'momentum' for optimizer 'adam'; "
        "valid keys: amsgrad, betas, eps, lr, name, weight_decay",
    )


@pytest.mark.parametrize(
    ("optimizer", "got"),
    [
        ({"name": "sgd", "nesterov": True}, "momentum=0.0, dampening=0.0"),
        ({"name": "sgd", "nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening=0.1"),
    ],
)
def test_nesterov_needs_momentum_and_no_dampening(optimizer: dict[str, object], got: str) -> None:
    assert_rejected(
        TrialSpec,
        trial(optimizer=optimizer),
        "optimizer.nesterov: nesterov requires momentum > 0 and dampening = 0",
        got,
    )


def test_nesterov_with_momentum_is_fine() -> None:
    spec = TrialSpec.model_validate(
        trial(optimizer={"name": "sgd", "momentum": 0.9, "nesterov": True})
    )
    assert isinstance(spec.optimizer, SGDParams) and spec.optimizer.nesterov


@pytest.mark.parametrize(
    ("optimizer", "field", "rule"),
    [
        ({"name": "adam", "betas": [0.9, 1.0]}, "optimizer.betas[1]", "less than 1"),
        ({"name": "adam", "eps": 0}, "optimizer.eps", "greater than 0"),
        ({"name": "rmsprop", "alpha": 1.0}, "optimizer.alpha", "less than 1"),
        ({"name": "adagrad", "lr_decay": -1}, "optimizer.lr_decay", "greater than or equal to 0"),
        ({"name": "sgd", "weight_decay": -1}, "optimizer.weight_decay", "greater than or equal"),
        ({"name": "lbfgs", "history_size": 0}, "optimizer.history_size", "greater than or equal"),
        ({"name": "lbfgs", "line_search_fn": "armijo"}, "optimizer.line_search_fn", "strong_wolfe"),
    ],
)
def test_optimizer_field_rules(optimizer: dict[str, object], field: str, rule: str) -> None:
    assert_rejected(TrialSpec, trial(optimizer=optimizer), field, rule)


def test_unknown_schedule_lists_valid_names() -> None:
    assert_rejected(
        TrialSpec,
        trial(schedule="inverse_sqrt"),
        "schedule.name: unknown schedule 'inverse_sqrt'",
        "constant, cosine, cosine_restarts, cyclic, exponential, linear, multistep, one_cycle, "
        "plateau",
    )


@pytest.mark.parametrize("milestones", [[100, 50], [100, 100]])
def test_multistep_milestones_must_increase(milestones: list[int]) -> None:
    assert_rejected(
        TrialSpec,
        trial(schedule={"name": "multistep", "milestones": milestones}),
        "schedule.milestones",
        "strictly increasing",
    )


def test_multistep_needs_milestones() -> None:
    assert_rejected(
        TrialSpec,
        trial(schedule={"name": "multistep", "milestones": []}),
        "schedule.milestones",
        "at least 1 item",
    )


@pytest.mark.parametrize(
    ("schedule", "field", "rule"),
    [
        ({"name": "step", "step_size": 0}, "schedule.step_size", "greater than or equal to 1"),
        ({"name": "range_test"}, "schedule.end_lr", "Field required"),
        ({"name": "linear", "end_factor": 1.5}, "schedule.end_factor", "less than or equal to 1"),
        (
            {"name": "cosine", "warmup_steps": 5, "warmup_fraction": 0.1},
            "schedule.warmup_fraction",
            "set warmup_steps (5) or warmup_fraction (0.1), not both",
        ),
        ({"name": "cosine", "warmup_fraction": 1}, "schedule.warmup_fraction", "less than 1"),
        ({"name": "exponential", "gamma": 1.5}, "schedule.gamma", "less than or equal to 1"),
        ({"name": "one_cycle", "max_lr": 0}, "schedule.max_lr", "greater than 0"),
        ({"name": "one_cycle", "max_lr": 1, "pct_start": 1}, "schedule.pct_start", "less than 1"),
        ({"name": "plateau", "factor": 1}, "schedule.factor", "less than 1"),
        ({"name": "cosine", "warmup_steps": -1}, "schedule.warmup_steps", "greater than or"),
        ({"name": "constant", "warmup_start_factor": 0}, "schedule.warmup_start_factor", "than 0"),
        ({"name": "cyclic", "max_lr": 1, "mode": "sine"}, "schedule.mode", "triangular"),
    ],
)
def test_schedule_field_rules(schedule: dict[str, object], field: str, rule: str) -> None:
    assert_rejected(TrialSpec, trial(schedule=schedule), field, rule)


def test_cosine_t_max_defaults_to_the_whole_budget() -> None:
    assert CosineSchedule().T_max is None
    assert ConstantSchedule().warmup_steps == 0


def test_unknown_task_and_task_keys() -> None:
    assert_rejected(
        TrialSpec, {"task": "mnist"}, "task.name: unknown task 'mnist'", "cartpole, digits"
    )
    assert_rejected(
        TrialSpec,
        {"task": {"name": "digits", "layers": 2}},
        "task.layers: unknown key 'layers' for task 'digits'",
        "valid keys: activation, hidden, init_scale, model, name, train_subset, val_fraction",
    )


@pytest.mark.parametrize(
    ("task", "field", "rule"),
    [
        ({"name": "digits", "val_fraction": 0.6}, "task.val_fraction", "less than or equal"),
        ({"name": "digits", "hidden": [0]}, "task.hidden[0]", "greater than or equal to 1"),
        ({"name": "regression", "n_samples": 10}, "task.n_samples", "greater than or equal"),
        ({"name": "text", "seq_len": 1000}, "task.seq_len", "less than or equal to 512"),
        ({"name": "cartpole", "gamma": 0}, "task.gamma", "greater than 0"),
    ],
)
def test_task_field_rules(task: dict[str, object], field: str, rule: str) -> None:
    assert_rejected(TrialSpec, {"task": task}, field, rule)


def test_task_defaults() -> None:
    digits = DigitsTask()
    assert (digits.model, digits.hidden, digits.val_fraction) == ("mlp", [128], 0.2)


def test_describe_registry() -> None:
    described = {entry["name"]: entry for entry in describe_registry(SCHEDULES)}
    assert list(described) == list(SCHEDULES)
    cyclic = described["cyclic"]
    assert cyclic["description"].startswith("Cycle the lr")
    assert "name" not in cyclic["params"]["properties"]
    # every length and peak lr can be left to derive (services.specs.schedule_defaults)
    assert "required" not in cyclic["params"]
    assert cyclic["params"]["properties"]["step_size_up"]["default"] is None
    range_test = described["range_test"]
    assert range_test["params"]["required"] == ["end_lr"]
    adam = next(e for e in describe_registry(OPTIMIZERS) if e["name"] == "adam")
    assert "required" not in adam["params"]
    assert adam["params"]["additionalProperties"] is False
