"""TrialSpec: defaults, bare names, field rules and cross-field rules, strict numbers and
the bounds no real run reaches."""

from __future__ import annotations

import math
from typing import Any

import pytest

from services.specs import (
    AdamParams,
    AdamWParams,
    ConstantSchedule,
    CyclicSchedule,
    DigitsTask,
    LrScaling,
    SGDParams,
    TrialSpec,
    effective_weight_decay,
    scaled_lr,
)
from tests.support.specs import assert_rejected, trial


def test_defaults() -> None:
    spec = TrialSpec.model_validate({"task": {"name": "digits"}})
    assert spec.task == DigitsTask()
    assert spec.optimizer == SGDParams(lr=0.01)
    assert spec.schedule == ConstantSchedule()
    assert spec.batch_size == 32
    assert spec.lr_scaling.rule == "none"
    assert spec.regularization.l2 == 0 and spec.regularization.swa is None
    assert (spec.budget.epochs, spec.budget.max_steps) == (10, None)
    assert (spec.eval_every, spec.checkpoint_every, spec.seed) == (50, 1000, 0)
    assert (spec.resources.cpus, spec.resources.gpus, spec.max_restarts) == (1.0, 0.0, 2)


def test_bare_strings_for_task_optimizer_and_schedule() -> None:
    spec = TrialSpec.model_validate({"task": "text", "optimizer": "adamw", "schedule": "cosine"})
    assert spec.task.name == "text"
    assert spec.optimizer == AdamWParams()
    assert spec.schedule.name == "cosine"


def test_round_trips_through_json() -> None:
    spec = TrialSpec.model_validate(
        trial(
            optimizer={"name": "adam", "lr": 3e-4, "betas": [0.8, 0.99]},
            schedule={"name": "multistep", "milestones": [100, 200], "warmup_steps": 10},
            batch_size="full",
            regularization={"swa": {"start_epoch": 5, "swa_lr": 0.01}, "grad_clip_norm": 1.0},
        )
    )
    assert TrialSpec.model_validate_json(spec.model_dump_json()) == spec
    assert TrialSpec.model_validate(spec.model_dump()) == spec


def test_task_is_required() -> None:
    assert_rejected(TrialSpec, {}, "task", "Field required")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (trial(learning_rate=0.1), "learning_rate: unknown key 'learning_rate' for trial spec"),
        (trial(budget={"steps": 10}), "budget.steps: unknown key 'steps' for budget"),
        (trial(lr_scaling={"rule": "sqrt", "base": 64}), "lr_scaling.base: unknown key 'base'"),
        (
            trial(regularization={"swa": {"start_step": 1, "swa_lr": 0.1, "lr": 1}}),
            "regularization.swa.lr: unknown key 'lr' for regularization.swa",
        ),
    ],
)
def test_unknown_keys_top_level_and_nested(data: dict[str, object], field: str) -> None:
    assert_rejected(TrialSpec, data, field, "valid keys: ")


def test_unknown_top_level_key_lists_the_fields() -> None:
    assert_rejected(
        TrialSpec,
        trial(momentum=0.9),
        "valid keys: batch_size, budget, checkpoint_every, diagnostics, eval_every, lr_scaling, "
        "max_restarts, optimizer, regularization, resources, schedule, seed, stop, task",
    )


@pytest.mark.parametrize(
    "batch_size", [0, -4, "half", 1.5, True, None, "32", 10_000_001, 1e12, 2**70]
)
def test_batch_size_must_be_a_bounded_int_or_full(batch_size: object) -> None:
    assert_rejected(
        TrialSpec,
        trial(batch_size=batch_size),
        'batch_size: must be an integer from 1 to 10000000 or "full"',
    )


def test_full_batch() -> None:
    assert (
        TrialSpec.model_validate(trial(batch_size="full", optimizer="lbfgs")).batch_size == "full"
    )


def test_cyclic_max_lr_above_explicit_base_lr() -> None:
    assert_rejected(
        TrialSpec,
        trial(schedule={"name": "cyclic", "base_lr": 0.1, "max_lr": 0.1}),
        "schedule.max_lr",
        "must be greater than base_lr (0.1)",
    )


def test_cyclic_max_lr_above_defaulted_base_lr() -> None:
    # base_lr unset: the optimizer's lr (0.01 by default) is the bottom of the cycle.
    assert_rejected(
        TrialSpec,
        trial(schedule={"name": "cyclic", "max_lr": 0.005}),
        "schedule.max_lr",
        "must be greater than base_lr (0.01",
        "optimizer.lr",
    )
    assert_rejected(
        TrialSpec,
        trial(optimizer={"name": "adam", "lr": 0.5}, schedule={"name": "cyclic", "max_lr": 0.1}),
        "schedule.max_lr",
        "base_lr (0.5",
    )
    spec = TrialSpec.model_validate(trial(schedule={"name": "cyclic", "max_lr": 0.1}))
    assert isinstance(spec.schedule, CyclicSchedule) and spec.schedule.base_lr is None


def test_both_clip_modes() -> None:
    assert_rejected(
        TrialSpec,
        trial(regularization={"grad_clip_norm": 1.0, "grad_clip_value": 0.5}),
        "regularization.grad_clip_value",
        "grad_clip_norm and grad_clip_value are mutually exclusive",
    )


def test_weight_decay_set_twice() -> None:
    assert_rejected(
        TrialSpec,
        trial(optimizer={"name": "sgd", "weight_decay": 1e-4}, regularization={"l2": 1e-4}),
        "regularization.l2",
        "set weight decay once: regularization.l2 or optimizer.weight_decay",
    )
    # adamw's default weight decay counts as set
    assert "weight_decay=0.01" in assert_rejected(
        TrialSpec, trial(optimizer="adamw", regularization={"l2": 1e-4}), "regularization.l2"
    )


def test_effective_weight_decay() -> None:
    assert effective_weight_decay(TrialSpec.model_validate(trial(optimizer="adamw"))) == 0.01
    l2 = TrialSpec.model_validate(trial(regularization={"l2": 5e-4}))
    assert effective_weight_decay(l2) == 5e-4
    assert effective_weight_decay(TrialSpec.model_validate(trial())) == 0.0


@pytest.mark.parametrize(
    ("budget", "got"), [({"epochs": 2, "max_steps": 100}, "both"), ({}, "neither")]
)
def test_budget_needs_exactly_one(budget: dict[str, int], got: str) -> None:
    assert_rejected(
        TrialSpec,
        trial(budget=budget),
        "budget: set exactly one of epochs or max_steps",
        f"(got {got})",
    )


def test_budget_in_steps() -> None:
    spec = TrialSpec.model_validate(trial(budget={"max_steps": 500}))
    assert (spec.budget.epochs, spec.budget.max_steps) == (None, 500)


def test_fractional_gpus() -> None:
    assert_rejected(
        TrialSpec,
        trial(resources={"gpus": 1.5}),
        "resources.gpus",
        "gpus above 1 must be a whole number (got 1.5)",
    )
    assert TrialSpec.model_validate(trial(resources={"gpus": 0.25})).resources.gpus == 0.25
    assert TrialSpec.model_validate(trial(resources={"gpus": 2})).resources.gpus == 2
    assert_rejected(TrialSpec, trial(resources={"cpus": 0}), "resources.cpus", "greater than 0")


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"eval_every": 0}, "eval_every", "greater than or equal to 1"),
        ({"checkpoint_every": 0}, "checkpoint_every", "greater than or equal to 1"),
        ({"seed": 2**31}, "seed", "less than or equal to 2147483647"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"max_restarts": 101}, "max_restarts", "less than or equal to 100"),
        ({"regularization": {"dropout": 1}}, "regularization.dropout", "less than 1"),
        ({"regularization": {"l1": -1}}, "regularization.l1", "greater than or equal to 0"),
        ({"regularization": {"layer_decay": 0}}, "regularization.layer_decay", "greater than 0"),
        ({"lr_scaling": {"rule": "cubic"}}, "lr_scaling.rule", "'none', 'linear' or 'sqrt'"),
    ],
)
def test_field_rules(fields: dict[str, object], field: str, rule: str) -> None:
    assert_rejected(TrialSpec, trial(**fields), field, rule)


@pytest.mark.parametrize(
    ("swa", "rule"),
    [
        ({"swa_lr": 0.05}, "set exactly one of start_step or start_epoch (got neither)"),
        (
            {"swa_lr": 0.05, "start_step": 1, "start_epoch": 1},
            "set exactly one of start_step or start_epoch (got both)",
        ),
    ],
)
def test_swa_start(swa: dict[str, object], rule: str) -> None:
    assert_rejected(TrialSpec, trial(regularization={"swa": swa}), "regularization.swa", rule)


def test_swa_must_start_before_the_end() -> None:
    assert_rejected(
        TrialSpec,
        trial(
            budget={"max_steps": 1000},
            regularization={"swa": {"start_step": 1000, "swa_lr": 0.05}},
        ),
        "regularization.swa.start_step",
        "start_step (1000) must be less than budget.max_steps (1000)",
    )
    assert_rejected(
        TrialSpec,
        trial(budget={"epochs": 5}, regularization={"swa": {"start_epoch": 5, "swa_lr": 0.05}}),
        "regularization.swa.start_epoch",
        "must be less than budget.epochs (5)",
    )


def test_warmup_must_end_before_the_budget() -> None:
    assert_rejected(
        TrialSpec,
        trial(budget={"max_steps": 100}, schedule={"name": "cosine", "warmup_steps": 100}),
        "schedule.warmup_steps",
        "warmup_steps (100) must be less than budget.max_steps (100)",
    )


def test_scaled_lr() -> None:
    assert scaled_lr(0.1, 256, LrScaling(rule="linear", base_batch_size=32)) == pytest.approx(0.8)
    assert scaled_lr(0.1, 128, LrScaling(rule="sqrt", base_batch_size=32)) == pytest.approx(0.2)
    assert scaled_lr(0.1, 256, LrScaling()) == 0.1
    assert math.isclose(scaled_lr(0.1, 16, LrScaling(rule="linear")), 0.05)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        scaled_lr(0.1, 0, LrScaling(rule="linear"))


def test_layer_decay_with_lbfgs_is_rejected_at_submission() -> None:
    import pydantic

    from services.specs import TrialSpec

    with pytest.raises(pydantic.ValidationError) as err:
        TrialSpec.model_validate(
            {"task": "digits", "optimizer": "lbfgs", "regularization": {"layer_decay": 0.5}}
        )
    (error,) = err.value.errors()
    assert error["loc"] == ("regularization", "layer_decay")
    assert "lbfgs takes a single group" in error["msg"]


# -- strict numbers and bounds ----------------------------------------------------------------

STRICT = [
    pytest.param({"optimizer": {"name": "sgd", "lr": True}}, "optimizer.lr", id="lr-true"),
    pytest.param({"optimizer": {"name": "sgd", "lr": "0.1"}}, "optimizer.lr", id="lr-string"),
    pytest.param({"budget": {"epochs": 10.0}}, "budget.epochs", id="epochs-float"),
    pytest.param({"budget": {"epochs": "10"}}, "budget.epochs", id="epochs-string"),
    pytest.param({"seed": False}, "seed", id="seed-false"),
    pytest.param({"resources": {"cpus": "2"}}, "resources.cpus", id="cpus-string"),
    pytest.param({"optimizer": {"name": "sgd", "nesterov": 1}}, "optimizer.nesterov", id="bool-1"),
    pytest.param(
        {"optimizer": {"name": "adam", "betas": [0.9, "0.99"]}}, "optimizer.betas[1]", id="beta"
    ),
]


@pytest.mark.parametrize(("fields", "field"), STRICT)
def test_numbers_are_numbers_not_booleans_or_strings(fields: dict[str, Any], field: str) -> None:
    assert_rejected(TrialSpec, trial(**fields), f"{field}: Input should be a valid")


def test_integers_given_for_floats_and_lists_for_pairs_are_fine() -> None:
    spec = TrialSpec.model_validate(
        trial(optimizer={"name": "adam", "lr": 1, "betas": [0.9, 0.99]}, resources={"cpus": 2})
    )
    assert spec.optimizer.lr == 1.0 and spec.resources.cpus == 2.0
    assert isinstance(spec.optimizer, AdamParams) and spec.optimizer.betas == (0.9, 0.99)
    # as stored (JSON: a list for the pair) and read back
    assert TrialSpec.model_validate(spec.model_dump(mode="json")) == spec


BOUNDS = [
    pytest.param({"budget": {"max_steps": 2**70}}, "budget.max_steps", "1000000000", id="steps"),
    pytest.param({"budget": {"epochs": 10**7}}, "budget.epochs", "1000000", id="epochs"),
    pytest.param({"eval_every": 2**40}, "eval_every", "1000000000", id="eval-every"),
    pytest.param(
        {"schedule": {"name": "step", "step_size": 2**40}},
        "schedule.step_size",
        "1000000000",
        id="step-size",
    ),
    pytest.param(
        {"lr_scaling": {"rule": "linear", "base_batch_size": 10**8}},
        "lr_scaling.base_batch_size",
        "10000000",
        id="base-batch-size",
    ),
    pytest.param({"resources": {"cpus": 4096}}, "resources.cpus", "1024", id="cpus"),
    pytest.param({"resources": {"gpus": 128}}, "resources.gpus", "64", id="gpus"),
    pytest.param(
        {"optimizer": {"name": "sgd", "momentum": 1.0}},
        "optimizer.momentum",
        "less than 1",
        id="momentum-1",
    ),
    pytest.param(
        {"optimizer": {"name": "sgd", "dampening": 1.5}},
        "optimizer.dampening",
        "1",
        id="dampening",
    ),
]


@pytest.mark.parametrize(("fields", "field", "bound"), BOUNDS)
def test_sizes_past_any_real_run_are_refused(
    fields: dict[str, Any], field: str, bound: str
) -> None:
    text = assert_rejected(TrialSpec, trial(**fields), f"{field}: Input should be")
    assert bound in text
