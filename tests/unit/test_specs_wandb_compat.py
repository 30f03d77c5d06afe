"""W&B files as teams write them: schedulers and optimizers named their own way, groups of
any name, weighted categoricals, metric.target, strict hyperband, program and command,
and the warnings for what lrlab accepts without doing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.specs import SweepSpec, ValuesParam, apply_params, expand_grid, spec_errors
from services.specs.early_stop import HyperbandStop
from services.specs.entry_names import SCHEDULE_ALIASES, alias_key
from services.specs.wandb import parse_wandb
from services.specs.wandb_names import GROUPS, NAMES


def read(parameters: dict[str, Any], method: str = "grid", **top: Any) -> SweepSpec:
    return parse_wandb({"method": method, "parameters": parameters, **top})


def warned(config: dict[str, Any]) -> list[str]:
    warnings: list[str] = []
    parse_wandb(config, warnings=warnings)
    return warnings


def errors(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_wandb(config, grid_limit=1000)
    return [str(error) for error in spec_errors(info.value)]


def assert_error(config: dict[str, Any], field: str, fragment: str) -> None:
    found = errors(config)
    assert any(e.startswith(f"{field}: ") and fragment in e for e in found), found


# -- schedulers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("names", "path", "values"),
    [
        # torch's classes and plain words: names alone stay names
        (
            ["StepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR", "CyclicLR"],
            "schedule.name",
            ["step", "exponential", "cosine", "one_cycle", "cyclic"],
        ),
        (
            ["step", "exponential", "cyclic", "one_cycle", "onecycle", "cosine"],
            "schedule.name",
            ["step", "exponential", "cyclic", "one_cycle", "one_cycle", "cosine"],
        ),
        (
            ["linear", "constant", "ReduceLROnPlateau", "cosine_with_restarts", "MultiStepLR"],
            "schedule.name",
            ["linear", "constant", "plateau", "cosine_restarts", "multistep"],
        ),
        # a name that implies fields makes every value a whole entry
        (
            ["warmup", "constant_with_warmup", "cosine", "triangular2"],
            "schedule",
            [
                {"name": "constant", "warmup_fraction": 0.1},
                {"name": "constant", "warmup_fraction": 0.1},
                {"name": "cosine"},
                {"name": "cyclic", "mode": "triangular2"},
            ],
        ),
    ],
)
def test_scheduler_names_are_read_with_their_aliases(
    names: list[str], path: str, values: list[Any]
) -> None:
    for key in ("scheduler", "lr_scheduler", "lr_schedule", "schedule", "lr_scheduler_type"):
        spec = read({key: {"values": names}, "lr": {"value": 0.05}})
        assert spec.space[path] == ValuesParam(values=values), key


def test_every_named_scheduler_builds_a_trial_with_derived_fields() -> None:
    names = ["StepLR", "exp", "CyclicLR", "OneCycleLR", "cosine", "linear", "warmup", "sgdr"]
    spec = read({"scheduler": {"values": names}, "learning_rate": {"values": [0.1, 0.01]}})
    trials = expand_grid(spec, 100)
    assert len(trials) == 16
    schedules = {t.schedule.name for _, t in trials}
    assert schedules == {"step", "exponential", "cyclic", "one_cycle", "cosine", "linear"} | {
        "constant",
        "cosine_restarts",
    }
    # The fields a name leaves out are derived when each trial starts (schedule_defaults).
    step = next(t for _, t in trials if t.schedule.name == "step")
    assert step.schedule.model_dump(exclude_unset=True) == {"name": "step"}


def test_a_constant_scheduler_and_objects_with_a_torch_name() -> None:
    spec = read({"scheduler": {"value": "OneCycleLR"}})
    assert spec.space["schedule.name"].model_dump() == {"value": "one_cycle"}
    objects = read(
        {"scheduler": {"values": [{"name": "StepLR", "gamma": 0.5}, {"name": "warmup"}]}}
    )
    assert objects.space["schedule"] == ValuesParam(
        values=[
            {"name": "step", "gamma": 0.5},
            {"name": "constant", "warmup_fraction": 0.1},
        ]
    )


def test_a_warmup_the_sweep_sets_wins_over_the_one_a_name_implies() -> None:
    spec = read({"scheduler": {"values": ["warmup", "cosine"]}, "warmup_steps": {"value": 5}})
    assert spec.space["schedule.name"] == ValuesParam(values=["constant", "cosine"])
    assert all(t.schedule.warmup_steps == 5 for _, t in expand_grid(spec, 10))


def test_unknown_scheduler_and_optimizer_names() -> None:
    config = {"method": "grid", "parameters": {"scheduler": {"values": ["step", "inverse_sqrt"]}}}
    assert_error(config, "parameters.scheduler.values[1]", "unknown scheduler 'inverse_sqrt'")
    assert_error(config, "parameters.scheduler.values[1]", "steplr, stepdecay")
    optimizer = {"method": "grid", "parameters": {"optimizer": {"value": "lamb"}}}
    assert_error(optimizer, "parameters.optimizer.value", "unknown optimizer 'lamb'")


def test_optimizer_names_as_people_write_them() -> None:
    spec = read({"optimizer": {"values": ["Adam", "SGD", "AdamW", "adamw_torch", "RMSprop"]}})
    assert spec.space["optimizer.name"] == ValuesParam(
        values=["adam", "sgd", "adamw", "adamw", "rmsprop"]
    )
    momentum = read({"optim": {"values": ["sgdm", "adam"]}})
    assert momentum.space["optimizer"] == ValuesParam(
        values=[{"name": "sgd", "momentum": 0.9}, {"name": "adam"}]
    )


# -- names and groups ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameters", "paths"),
    [
        (
            {"optimizer_config": {"parameters": {"lr": {"value": 0.1}, "momentum": {"value": 0}}}},
            ["optimizer.lr", "optimizer.momentum"],
        ),
        (
            {
                "training": {
                    "parameters": {
                        "optim": {
                            "parameters": {
                                "name": {"value": "adam"},
                                "learning_rate": {"value": 0.01},
                                "eps": {"value": 1e-7},
                            }
                        },
                        "batch_size": {"value": 16},
                        "num_epochs": {"value": 2},
                    }
                },
                "model": {"parameters": {"dropout": {"value": 0.1}, "arch": {"value": "cnn"}}},
            },
            [
                "optimizer.name",
                "optimizer.lr",
                "optimizer.eps",
                "batch_size",
                "budget.epochs",
                "regularization.dropout",
                "task.model",
            ],
        ),
        # a leaf that is no field of its group is read by the table
        (
            {"optimizer": {"parameters": {"lr": {"value": 0.1}, "warmup_steps": {"value": 5}}}},
            ["optimizer.lr", "schedule.warmup_steps"],
        ),
        # a field of the group wins: cartpole's gamma is the task's discount
        (
            {"task": {"parameters": {"name": {"value": "cartpole"}, "gamma": {"value": 0.9}}}},
            ["task.name", "task.gamma"],
        ),
        (
            {"hparams": {"parameters": {"LR": {"value": 0.1}, "Weight-Decay": {"value": 0.01}}}},
            ["optimizer.lr", "optimizer.weight_decay"],
        ),
    ],
)
def test_groups_of_any_name_are_read_by_their_leaves(
    parameters: dict[str, Any], paths: list[str]
) -> None:
    spec = read(parameters)
    assert list(spec.space) == paths
    expand_grid(spec, 10)  # and each makes a valid trial


def test_beta1_and_beta2_set_one_item_of_betas_each() -> None:
    spec = read(
        {
            "optimizer": {"value": "adamw"},
            "adam_beta1": {"values": [0.8, 0.9]},
            "beta2": {"value": 0.99},
        }
    )
    assert list(spec.space) == ["optimizer.name", "optimizer.betas.0", "optimizer.betas.1"]
    betas = [t.optimizer.betas for _, t in expand_grid(spec, 10)]  # type: ignore[union-attr]
    assert betas == [(0.8, 0.99), (0.9, 0.99)]


def test_a_leaf_lrlab_does_not_understand_is_refused_with_the_names_it_does() -> None:
    config = {
        "method": "grid",
        "parameters": {"model": {"parameters": {"hidden_size": {"value": 8}}}},
    }
    found = errors(config)
    assert len(found) == 1, found
    message = found[0]
    assert message.startswith("parameters.model.parameters.hidden_size: unknown parameter")
    for name in ("lr", "momentum", "weight_decay", "beta1", "beta2", "batch_size", "epochs"):
        assert f" {name}," in message
    assert "optimizer," in message and "scheduler," in message


# -- weighted categoricals -------------------------------------------------------------------
def test_probabilities_are_kept_for_random_and_dropped_with_a_warning_otherwise() -> None:
    weighted = {"values": ["adam", "sgd"], "probabilities": [0.8, 0.2]}
    spec = read({"optimizer": weighted}, "random")
    assert spec.space["optimizer.name"] == ValuesParam(
        values=["adam", "sgd"], probabilities=[0.8, 0.2]
    )
    for method, says in (("grid", "enumerates every value"), ("bayes", "takes no prior")):
        config = {"method": method, "parameters": {"optimizer": weighted}}
        warnings = warned(config)
        assert any(
            w.startswith("parameters.optimizer.probabilities: ") and says in w for w in warnings
        ), warnings
        param = parse_wandb(config).space["optimizer.name"]
        assert isinstance(param, ValuesParam) and param.probabilities is None


def test_native_specs_refuse_weights_a_method_would_drop() -> None:
    space = {"optimizer.name": {"values": ["adam", "sgd"], "probabilities": [0.5, 0.5]}}
    SweepSpec.model_validate({"base": {"task": "digits"}, "method": "random", "space": space})
    for method in ("grid", "bayes"):
        with pytest.raises(ValidationError) as info:
            SweepSpec.model_validate({"base": {"task": "digits"}, "method": method, "space": space})
        assert "probabilities weight method random's draws" in str(info.value)


# -- metric, early_terminate -----------------------------------------------------------------
def test_metric_target_and_impute() -> None:
    config = {
        "method": "random",
        "metric": {"name": "val_acc", "goal": "maximize", "target": 0.95, "impute": "worst"},
        "parameters": {"lr": {"min": 0.001, "max": 0.1}},
    }
    spec = parse_wandb(config)
    # val_acc, as Lightning examples log it, is read as lrlab's val_accuracy, and said so
    metric = (spec.metric.name, spec.metric.goal, spec.metric.target)
    assert metric == ("val_accuracy", "maximize", 0.95)
    warnings = warned(config)
    assert any(w.startswith("metric.impute: 'worst' is not used") for w in warnings)
    assert "metric.name: 'val_acc' is read as lrlab's 'val_accuracy'" in warnings


def test_strict_is_wandbs_default_and_must_be_a_boolean() -> None:
    config: dict[str, Any] = {"method": "grid", "parameters": {"lr": {"value": 0.1}}}
    on = parse_wandb({**config, "early_terminate": {"type": "hyperband", "min_iter": 2}})
    assert on.early_stop == HyperbandStop(min_resource=2, strict=True)
    off = {"type": "hyperband", "min_iter": 2, "strict": False}
    assert parse_wandb({**config, "early_terminate": off}).early_stop.strict is False  # type: ignore[union-attr]
    bad = {"type": "hyperband", "min_iter": 2, "strict": "yes"}
    assert_error({**config, "early_terminate": bad}, "early_terminate.strict", "true or false")


# -- code to run, and keys lrlab does not act on ---------------------------------------------
LR = {"lr": {"values": [0.1]}}


@pytest.mark.parametrize(
    "code",
    [
        {"program": "train.py"},
        {"command": ["${env}", "python", "train.py", "${args}"]},
        {"job": "me/project/job-train:v1"},
        {"image_uri": "ghcr.io/me/train:latest"},
    ],
)
def test_code_to_run_needs_a_registered_task(code: dict[str, Any]) -> None:
    key = next(iter(code))
    config = {"method": "grid", "parameters": LR, **code}
    assert_error(config, key, "lrlab's server never runs uploaded code")
    assert_error(config, key, "base: {task: digits}")
    assert_error(config, key, "An agent that runs your own training code is planned")
    with_base = {**config, "base": {"task": "regression"}}
    assert parse_wandb(with_base).base.task.name == "regression"
    assert any(w.startswith(f"{key}: lrlab does not run") for w in warned(with_base))
    with_task = {**config, "parameters": {**LR, "task": {"values": ["digits", "text"]}}}
    assert "task.name" in parse_wandb(with_task).space
    assert any("the task named by the parameter task" in w for w in warned(with_task))


def test_keys_lrlab_cannot_honour_come_back_as_warnings() -> None:
    config = {
        "method": "grid",
        "parameters": LR,
        "entity": "team",
        "project": "lr-study",
        "controller": {"type": "local"},
        "apiVersion": "v1",
        "base": {"task": "digits"},
    }
    keys = sorted(w.split(":")[0] for w in warned(config))
    assert keys == ["controller", "entity", "project"]
    defaulted = warned({"method": "grid", "parameters": LR})
    assert defaulted == [
        "base: nothing names a task, so every trial trains lrlab's built-in task digits; "
        "name one with base: {task: ...} or a task parameter"
    ]


def test_log_uniform_bounds_that_look_like_values_are_warned_about() -> None:
    config = {
        "method": "random",
        "base": {"task": "digits"},
        "parameters": {"lr": {"distribution": "log_uniform", "min": 0.0001, "max": 0.1}},
    }
    assert warned(config) == [
        "parameters.lr: log_uniform takes natural-log exponents: min 0.0001 and max 0.1 give "
        "values from 1 to 1.105; for bounds that are values use log_uniform_values"
    ]


def test_trials_of_a_translated_file_are_valid_trial_specs() -> None:
    spec = read(
        {
            "lr_scheduler_type": {"values": ["linear", "cosine_with_restarts"]},
            "warmup_ratio": {"value": 0.06},
            "per_device_train_batch_size": {"value": 16},
            "num_train_epochs": {"value": 1},
        }
    )
    for params, trial in expand_grid(spec, 10):
        assert apply_params(spec.base, params) == trial
        assert trial.schedule.warmup_fraction == 0.06 and trial.batch_size == 16


# -- the documented tables are the code's ----------------------------------------------------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "wandb.md"


def doc_rows(first_cell: str) -> dict[str, list[str]]:
    """The rows of the docs table whose header starts with `first_cell`: cell -> names."""
    lines = DOCS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell}"))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        head, names = (cell.strip() for cell in line.strip("|").split("|")[:2])
        rows[head] = re.findall(r"`([^`]+)`", names)
    return rows


def test_the_docs_list_every_name_of_the_table_in_order() -> None:
    rows = {head.strip("`"): names for head, names in doc_rows("trial-spec field").items()}
    assert rows == {path: list(names) for path, names in NAMES.items()}


def test_the_docs_list_every_schedule_alias_and_group() -> None:
    documented = {alias_key(n) for names in doc_rows("schedule").values() for n in names}
    assert set(SCHEDULE_ALIASES) <= documented
    text = DOCS.read_text()
    assert all(f"`{group}`" in text for group in GROUPS)
