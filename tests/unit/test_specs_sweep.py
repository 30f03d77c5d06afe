"""SweepSpec, its search-space parameters, and grid expansion."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from services.specs import (
    AdamParams,
    ConstantParam,
    DistributionParam,
    SGDParams,
    SpecError,
    SweepSpec,
    TrialSpec,
    ValuesParam,
    apply_params,
    expand_grid,
    grid_size,
)
from tests.support.specs import assert_rejected, trial


def sweep(space: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"base": trial(), "space": space or {}, **fields}


def spec_of(space: dict[str, Any] | None = None, **fields: Any) -> SweepSpec:
    return SweepSpec.model_validate(sweep(space, **fields))


def test_defaults_and_method_single_without_space() -> None:
    spec = SweepSpec.model_validate({"base": trial()})
    assert (spec.name, spec.method, spec.space, spec.max_trials) == ("sweep", "single", {}, None)
    assert (spec.max_concurrent, spec.metric.name, spec.metric.goal) == (4, "val_loss", "minimize")
    assert expand_grid(spec, limit=10) == [({}, spec.base)]


def test_method_defaults_to_grid_with_a_space() -> None:
    assert spec_of({"optimizer.lr": [0.1, 0.01]}).method == "grid"
    assert spec_of({"optimizer.lr": [0.1]}, method=None).method == "grid"


def test_param_forms() -> None:
    spec = spec_of(
        {
            "optimizer.lr": [0.1, 0.01],
            "batch_size": {"values": [16, 32]},
            "seed": {"value": 7},
            "regularization.dropout": {"distribution": "uniform", "low": 0, "high": 0.5},
        },
        method="random",
    )
    assert spec.space["optimizer.lr"] == ValuesParam(values=[0.1, 0.01])
    assert spec.space["batch_size"] == ValuesParam(values=[16, 32])
    assert spec.space["seed"] == ConstantParam(value=7)
    assert isinstance(spec.space["regularization.dropout"], DistributionParam)
    # the stored form validates back to the same spec
    assert SweepSpec.model_validate_json(spec.model_dump_json()) == spec


def test_grid_expansion_count_and_order() -> None:
    spec = spec_of({"optimizer.lr": [0.1, 0.01, 0.001], "batch_size": [16, 64]})
    assert grid_size(spec) == 6
    trials = expand_grid(spec, limit=100)
    assert [params for params, _ in trials] == [
        {"optimizer.lr": lr, "batch_size": bs} for lr in (0.1, 0.01, 0.001) for bs in (16, 64)
    ]
    assert [(t.optimizer.lr, t.batch_size) for _, t in trials] == [
        (0.1, 16),
        (0.1, 64),
        (0.01, 16),
        (0.01, 64),
        (0.001, 16),
        (0.001, 64),
    ]


def test_nested_path_override_keeps_the_rest_of_the_base() -> None:
    base = trial(optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9}, seed=3)
    spec = SweepSpec.model_validate(
        {"base": base, "space": {"optimizer.momentum": [0.0, 0.99], "regularization.l1": [1e-5]}}
    )
    trials = [t for _, t in expand_grid(spec, limit=10)]
    assert [t.optimizer for t in trials] == [
        SGDParams(lr=0.05, momentum=0.0),
        SGDParams(lr=0.05, momentum=0.99),
    ]
    assert all(t.seed == 3 and t.regularization.l1 == 1e-5 for t in trials)


def test_max_trials_caps_the_grid() -> None:
    spec = spec_of({"optimizer.lr": [0.1, 0.01, 0.001], "seed": [1, 2]}, max_trials=4)
    trials = expand_grid(spec, limit=100)
    assert len(trials) == 4
    assert trials[-1][0] == {"optimizer.lr": 0.01, "seed": 2}


def test_grid_over_the_limit() -> None:
    spec = spec_of({"seed": list(range(10)), "batch_size": list(range(1, 11))}, max_trials=5)
    with pytest.raises(SpecError) as info:
        expand_grid(spec, limit=99)
    assert info.value.field == "space"
    assert info.value.message == "grid has 100 combinations; the limit is 99"


def test_switching_optimizer_name_does_not_carry_old_defaults() -> None:
    # the base's sgd has momentum/dampening/nesterov defaults, which adam does not know
    spec = spec_of({"optimizer.name": ["sgd", "adam"], "optimizer.lr": [0.003]})
    optimizers = [t.optimizer for _, t in expand_grid(spec, limit=10)]
    assert optimizers == [SGDParams(lr=0.003), AdamParams(lr=0.003)]


def test_whole_sub_spec_choices_then_deeper_paths() -> None:
    spec = spec_of(
        {
            "optimizer.lr": [0.2],  # set after "optimizer" whatever the key order
            "optimizer": [{"name": "adam", "amsgrad": True}, "sgd"],
            "schedule.name": ["constant", "cosine"],
        }
    )
    trials = [t for _, t in expand_grid(spec, limit=10)]
    assert [(t.optimizer.name, t.optimizer.lr, t.schedule.name) for t in trials] == [
        ("adam", 0.2, "constant"),
        ("adam", 0.2, "cosine"),
        ("sgd", 0.2, "constant"),
        ("sgd", 0.2, "cosine"),
    ]
    assert isinstance(trials[0].optimizer, AdamParams) and trials[0].optimizer.amsgrad


def test_path_into_a_null_sub_spec() -> None:
    spec = spec_of({"regularization.swa.swa_lr": [0.01], "regularization.swa.start_epoch": [5, 8]})
    trials = [t for _, t in expand_grid(spec, limit=10)]
    assert [t.regularization.swa.start_epoch for t in trials if t.regularization.swa] == [5, 8]


def test_invalid_combination_names_it_and_the_inner_error() -> None:
    spec = spec_of({"schedule.name": ["cosine", "step"], "schedule.gamma": [1.5]})
    with pytest.raises(SpecError) as info:
        expand_grid(spec, limit=10)
    assert info.value.field == "space"
    assert "{'schedule.name': 'step', 'schedule.gamma': 1.5}" in info.value.message
    assert "schedule.gamma: Input should be less than or equal to 1" in info.value.message


def test_apply_params_validates() -> None:
    base = TrialSpec.model_validate(trial())
    assert apply_params(base, {"batch_size": "full"}).batch_size == "full"
    assert apply_params(base, {}) == base


def test_unknown_top_level_path_lists_fields() -> None:
    assert_rejected(
        SweepSpec,
        sweep({"learning_rate": [0.1]}),
        "space.learning_rate: unknown path 'learning_rate'",
        "valid top-level fields: batch_size, budget, checkpoint_every",
    )


def test_unknown_nested_path() -> None:
    assert_rejected(
        SweepSpec,
        sweep({"regularization.weight_decay": [0.1]}),
        "space['regularization.weight_decay']: unknown path",
        "valid keys of regularization",
        "l1, l2",
    )
    assert_rejected(
        SweepSpec,
        sweep({"batch_size.value": [1]}),
        "unknown path 'batch_size.value'",
        "batch_size is a value",
    )


def test_registry_path_must_fit_the_base_entry() -> None:
    assert_rejected(
        SweepSpec,
        {"base": trial(optimizer="adam"), "space": {"optimizer.momentum": [0.9]}},
        "space['optimizer.momentum']: unknown path",
        "valid keys of optimizer (optimizer 'adam')",
    )
    # unless the sweep also changes the entry: then each combination is checked
    spec = SweepSpec.model_validate(
        {
            "base": trial(optimizer="adam"),
            "space": {"optimizer.name": ["sgd"], "optimizer.momentum": [0.9]},
        }
    )
    assert expand_grid(spec, limit=1)[0][1].optimizer == SGDParams(momentum=0.9)


@pytest.mark.parametrize(
    ("param", "field", "rule"),
    [
        (
            {"distribution": "uniform", "low": 1, "high": 1},
            ".low",
            "low (1.0) must be less than high (1.0)",
        ),
        ({"distribution": "log_uniform", "low": 0, "high": 1}, ".low", "log_uniform needs low > 0"),
        (
            {"distribution": "q_log_uniform", "low": -1, "high": 1, "q": 0.5},
            ".low",
            "needs low > 0",
        ),
        ({"distribution": "q_uniform", "low": 0, "high": 1, "q": 0}, ".q", "greater than 0"),
        ({"distribution": "q_uniform", "low": 0, "high": 1}, ".q", "q_uniform needs q"),
        ({"distribution": "normal", "mu": 0, "sigma": 0}, ".sigma", "greater than 0"),
        (
            {"distribution": "normal", "mu": 0, "sigma": 1, "low": 0},
            ".low",
            "low is not used by normal",
        ),
        ({"distribution": "int_uniform", "low": 0.5, "high": 4}, ".low", "whole low and high"),
        (
            {"distribution": "gamma", "low": 0, "high": 1},
            ".distribution",
            "'uniform', 'log_uniform'",
        ),
        ({"distribution": "beta", "low": 0, "high": 1}, ".low", "low is not used by beta"),
        ({"values": []}, ".values", "at least 1 item"),
        ({"values": [1], "low": 0}, ".low", "unknown key 'low' for values parameter"),
        ({"value": 1, "extra": 2}, ".extra", "unknown key 'extra' for constant parameter"),
        ({"min": 0, "max": 1}, "", "a parameter must be a list of values"),
        (0.1, "", "{value: x}"),
        ({"distribution": "uniform", "low": True, "high": 1}, ".low", "valid number"),
        ({"distribution": "uniform", "low": "0.1", "high": 1}, ".low", "valid number"),
        ({"distribution": "q_uniform", "low": 0, "high": 1, "q": "1"}, ".q", "valid"),
        (["a\x00"], ".values", "must not contain control characters"),
        ([{"k": "\ud800"}], ".values", "must not contain control characters"),
    ],
)
def test_param_rules(param: Any, field: str, rule: str) -> None:
    assert_rejected(
        SweepSpec,
        sweep({"optimizer.lr": param}, method="random"),
        f"space['optimizer.lr']{field}",
        rule,
    )


def test_distribution_under_grid() -> None:
    assert_rejected(
        SweepSpec,
        sweep({"optimizer.lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}}),
        "space['optimizer.lr']: optimizer.lr is a log_uniform distribution",
        "method 'grid' cannot enumerate",
    )


def test_random_and_bayes_need_a_space() -> None:
    for method in ("random", "bayes"):
        assert_rejected(
            SweepSpec, sweep(method=method), "space:", f"method '{method}' needs at least one"
        )


def test_single_takes_no_space() -> None:
    assert_rejected(
        SweepSpec, sweep({"seed": [1, 2]}, method="single"), "method:", "takes no space"
    )


def test_sampled_methods_have_no_grid() -> None:
    spec = spec_of({"seed": [1, 2]}, method="random")
    with pytest.raises(SpecError) as info:
        expand_grid(spec, limit=10)
    assert info.value.field == "method"


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"max_trials": 0}, "max_trials", "greater than or equal to 1"),
        ({"max_concurrent": 0}, "max_concurrent", "greater than or equal to 1"),
        ({"max_concurrent": "4"}, "max_concurrent", "valid integer"),
        ({"max_trials": True}, "max_trials", "valid integer"),
        ({"seed": 1.0}, "seed", "valid integer"),
        ({"metric": {"goal": "max"}}, "metric.goal", "'minimize' or 'maximize'"),
        ({"metric": {"name": "val\x00loss"}}, "metric.name", "control characters"),
        ({"description": "a\x00"}, "description", "control characters"),
        ({"method": "hyperband"}, "method", "'grid', 'random', 'bayes' or 'single'"),
        ({"owner": "me"}, "owner", "unknown key 'owner' for sweep spec"),
        ({"base": {"task": "digits", "lr": 1}}, "base.lr", "unknown key 'lr' for trial spec"),
    ],
)
def test_sweep_field_rules(fields: dict[str, Any], field: str, rule: str) -> None:
    assert_rejected(SweepSpec, {**sweep(), **fields}, field, rule)


def test_an_item_of_a_tuple_is_swept_by_its_index() -> None:
    spec = SweepSpec.model_validate(
        {"base": {"task": "digits", "optimizer": "adam"}, "space": {"optimizer.betas.1": [0.99]}}
    )
    ((_, trial),) = expand_grid(spec, 10)
    assert trial.optimizer.betas == (0.9, 0.99)  # type: ignore[union-attr]
    for space, rule in (
        ({"optimizer.betas.2": [0.9]}, "optimizer.betas has 2 items, 0 to 1"),
        ({"optimizer.lr.0": [0.9]}, "optimizer.lr is a value, not a nested spec"),
    ):
        with pytest.raises(ValidationError, match=re.escape(rule)):
            SweepSpec.model_validate(
                {"base": {"task": "digits", "optimizer": "adam"}, "space": space}
            )
    sgd = {"base": {"task": "digits"}, "space": {"optimizer.betas.0": [0.9]}}
    with pytest.raises(ValidationError, match="valid keys of optimizer"):
        SweepSpec.model_validate(sgd)
    # With the optimizer swept, betas apply to the trials whose optimizer has them.
    both = {**sgd, "space": {"optimizer.name": ["adam", "sgd"], "optimizer.betas.0": [0.8]}}
    (_, adam), (_, plain) = expand_grid(SweepSpec.model_validate(both), 10)
    assert adam.optimizer.betas == (0.8, 0.999)  # type: ignore[union-attr]
    assert not hasattr(plain.optimizer, "betas")
