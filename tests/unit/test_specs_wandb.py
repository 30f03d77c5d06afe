"""W&B sweep files read as native specs: every distribution and inference rule, nested
parameters, the name mapping, early_terminate and its hyperband brackets, and errors that
point into the file."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from services.search import hyperband_rungs, sample
from services.specs import ConstantParam, DistributionParam, SweepSpec, ValuesParam, spec_errors
from services.specs.documents import load_yaml
from services.specs.early_stop import HyperbandStop
from services.specs.sweep import check_path
from services.specs.trial import TrialSpec
from services.specs.wandb import parse_wandb
from services.specs.wandb_names import ALIASES
from services.specs.wandb_params import WANDB_DISTRIBUTIONS


def read(parameters: dict[str, Any], method: str = "random", **top: Any) -> SweepSpec:
    return parse_wandb({"method": method, "parameters": parameters, **top})


def one(param: dict[str, Any], method: str = "random") -> Any:
    """The native param of a single W&B parameter, set on momentum (an sgd field)."""
    return read({"momentum": param}, method).space["optimizer.momentum"]


def errors(config: Any, grid_limit: int | None = None) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_wandb(config, grid_limit=grid_limit)
    return [str(error) for error in spec_errors(info.value)]


def assert_error(config: Any, field: str, fragment: str, grid_limit: int | None = None) -> None:
    found = errors(config, grid_limit)
    prefix = f"{field}: " if field else ""
    assert any(e.startswith(prefix) and fragment in e for e in found), found


def dist(name: str, **args: Any) -> DistributionParam:
    return DistributionParam.model_validate({"distribution": name, **args})


# -- distributions --------------------------------------------------------------------------
E = math.exp
DISTRIBUTION_CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "constant": ({"value": 0.9}, ConstantParam(value=0.9)),
    "categorical": ({"values": [0.0, 0.9]}, ValuesParam(values=[0.0, 0.9])),
    "categorical_w_probabilities": (
        {"values": [0.0, 0.9], "probabilities": [0.25, 0.75]},
        ValuesParam(values=[0.0, 0.9], probabilities=[0.25, 0.75]),
    ),
    "int_uniform": ({"min": 1, "max": 5}, dist("int_uniform", low=1, high=5)),
    "uniform": ({"min": 0, "max": 0.9}, dist("uniform", low=0, high=0.9)),
    "q_uniform": ({"min": 0, "max": 1, "q": 0.1}, dist("q_uniform", low=0, high=1, q=0.1)),
    "log_uniform": ({"min": -9, "max": -2}, dist("log_uniform", low=E(-9), high=E(-2))),
    "log_uniform_values": ({"min": 1e-4, "max": 0.1}, dist("log_uniform", low=1e-4, high=0.1)),
    "q_log_uniform": (
        {"min": 2, "max": 6, "q": 2},
        dist("q_log_uniform", low=E(2), high=E(6), q=2),
    ),
    "q_log_uniform_values": (
        {"min": 16, "max": 512, "q": 16},
        dist("q_log_uniform", low=16, high=512, q=16),
    ),
    # log(1/X) in [min, max]: X in [exp(-max), exp(-min)]
    "inv_log_uniform": ({"min": 0, "max": 2}, dist("inv_log_uniform", low=E(-2), high=1)),
    "inv_log_uniform_values": (
        {"min": 0.1, "max": 10},
        dist("inv_log_uniform", low=0.1, high=10),
    ),
    "normal": ({"mu": 0.5, "sigma": 0.1}, dist("normal", mu=0.5, sigma=0.1)),
    "q_normal": ({"mu": 5, "sigma": 2, "q": 1}, dist("q_normal", mu=5, sigma=2, q=1)),
    "log_normal": ({"mu": -1, "sigma": 0.5}, dist("log_normal", mu=-1, sigma=0.5)),
    "q_log_normal": (
        {"mu": 3, "sigma": 1, "q": 0.5},
        dist("q_log_normal", mu=3, sigma=1, q=0.5),
    ),
    "beta": ({"a": 2, "b": 8}, dist("beta", a=2, b=8)),
    "q_beta": ({"a": 2, "b": 8, "q": 0.05}, dist("q_beta", a=2, b=8, q=0.05)),
}


def test_every_wandb_distribution_has_a_case() -> None:
    assert set(DISTRIBUTION_CASES) == set(WANDB_DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(DISTRIBUTION_CASES))
def test_each_distribution_becomes_its_native_form(name: str) -> None:
    args, expected = DISTRIBUTION_CASES[name]
    assert one({"distribution": name, **args}) == expected


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        # only values: categorical; only value: constant
        ({"values": [1, 2]}, ValuesParam(values=[1, 2])),
        ({"value": "x"}, ConstantParam(value="x")),
        ({"value": None}, ConstantParam(value=None)),
        # only min and max: int_uniform when both are integers, uniform otherwise
        ({"min": 0, "max": 3}, dist("int_uniform", low=0, high=3)),
        ({"min": 0, "max": 3.0}, dist("uniform", low=0, high=3)),
        ({"min": 0.5, "max": 3}, dist("uniform", low=0.5, high=3)),
        # documented defaults: q 1, mu 0, sigma 1, a 1, b 1
        ({"distribution": "q_uniform", "min": 0, "max": 9}, dist("q_uniform", low=0, high=9, q=1)),
        ({"distribution": "normal"}, dist("normal", mu=0, sigma=1)),
        ({"distribution": "q_log_normal"}, dist("q_log_normal", mu=0, sigma=1, q=1)),
        ({"distribution": "beta"}, dist("beta", a=1, b=1)),
        ({"distribution": "q_beta", "q": 0.5}, dist("q_beta", a=1, b=1, q=0.5)),
    ],
)
def test_inference_and_defaults(param: dict[str, Any], expected: Any) -> None:
    assert one(param) == expected


def test_default_q_is_the_integer_1_so_values_are_integers() -> None:
    param = one({"distribution": "q_log_uniform_values", "min": 16, "max": 256})
    rng = np.random.default_rng(0)
    values = [sample(param, rng) for _ in range(200)]
    assert all(type(v) is int and 16 <= v <= 256 for v in values)


def test_log_uniform_bounds_are_natural_log_exponents() -> None:
    # W&B: X between exp(min) and exp(max), log X uniform between min and max
    param = one({"distribution": "log_uniform", "min": -9.21, "max": -2.3})
    rng = np.random.default_rng(3)
    logs = np.log([sample(param, rng) for _ in range(3000)])
    assert logs.min() >= -9.21 - 1e-9 and logs.max() <= -2.3 + 1e-9
    assert stats.kstest(logs, "uniform", args=(-9.21, 9.21 - 2.3)).statistic < 0.035


def test_inv_log_uniform_exponents_bound_log_of_the_reciprocal() -> None:
    param = one({"distribution": "inv_log_uniform", "min": 1, "max": 4})
    rng = np.random.default_rng(4)
    inv_logs = np.log(1 / np.array([sample(param, rng) for _ in range(3000)]))
    assert inv_logs.min() >= 1 - 1e-9 and inv_logs.max() <= 4 + 1e-9
    assert stats.kstest(inv_logs, "uniform", args=(1, 3)).statistic < 0.035


# -- grid -----------------------------------------------------------------------------------
def test_grid_enumerates_int_uniform_and_q_uniform_as_wandb_does() -> None:
    assert one({"min": 1, "max": 4}, "grid") == ValuesParam(values=[1, 2, 3, 4])
    # W&B's grid takes q_uniform as arange(min, max, q): max itself is not included
    q_int = one({"distribution": "q_uniform", "min": 0, "max": 6, "q": 2}, "grid")
    assert q_int == ValuesParam(values=[0, 2, 4])
    q_float = one({"distribution": "q_uniform", "min": 0.5, "max": 1.0, "q": 0.25}, "grid")
    assert q_float == ValuesParam(values=[0.5, 0.75])


def test_grid_refuses_sampled_distributions_and_huge_ranges() -> None:
    config = {"method": "grid", "parameters": {"lr": {"distribution": "log_uniform_values"}}}
    config["parameters"]["lr"].update(min=1e-4, max=1e-1)
    assert_error(config, "parameters.lr.distribution", "can only be sampled (method random")
    huge = {"method": "grid", "parameters": {"seed": {"min": 0, "max": 10**6}}}
    assert_error(huge, "parameters.seed", "has 1000001 values; the limit is 10000")
    tiny_q = {"distribution": "q_uniform", "min": 0, "max": 1e300, "q": 1e-300}
    tiny = {"method": "grid", "parameters": {"seed": tiny_q}}
    assert_error(tiny, "parameters.seed", "has too many values")


def test_grid_combinations_are_checked_with_a_limit() -> None:
    config = {"method": "grid", "parameters": {"seed": {"min": 1, "max": 5}}}
    assert_error(config, "parameters", "grid has 5 combinations; the limit is 4", grid_limit=4)
    bad = {"method": "grid", "parameters": {"lr": {"values": [0.1, -1]}}}
    assert_error(bad, "parameters", "gives an invalid trial", grid_limit=10)
    assert len(parse_wandb(config, grid_limit=5).space["seed"].values) == 5  # type: ignore[union-attr]


# -- names ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("learning_rate", "optimizer.lr"),
        ("lr", "optimizer.lr"),
        ("optimizer", "optimizer.name"),
        ("momentum", "optimizer.momentum"),
        ("weight_decay", "optimizer.weight_decay"),
        ("batch_size", "batch_size"),
        ("dropout", "regularization.dropout"),
        ("epochs", "budget.epochs"),
        ("max_steps", "budget.max_steps"),
        ("scheduler", "schedule.name"),
        ("schedule", "schedule.name"),
        ("warmup_steps", "schedule.warmup_steps"),
        ("seed", "seed"),
        ("grad_clip_norm", "regularization.grad_clip_norm"),
        ("task", "task.name"),
        # a dotted trial-spec path is taken as it is
        ("regularization.l1", "regularization.l1"),
        ("lr_scaling.rule", "lr_scaling.rule"),
    ],
)
def test_names_map_onto_the_trial_spec(name: str, path: str) -> None:
    value = {"optimizer": "adam", "scheduler": "cosine", "schedule": "cosine", "task": "digits"}
    param = {"value": value.get(name, 1 if "epochs" in name or "steps" in name else 0.5)}
    if path == "lr_scaling.rule":
        param = {"value": "sqrt"}
    assert list(read({name: param}, "grid").space) == [path]


def test_every_alias_is_a_field_of_some_trial_spec() -> None:
    # Every optimizer, schedule and task entry open, as when the sweep varies them.
    base = TrialSpec.model_validate({"task": "digits"})
    entries = {"optimizer.name", "schedule.name", "task.name"}
    for path in ALIASES.values():
        check_path(path, base, entries)  # raises for a path that is no field anywhere


def test_nested_parameters() -> None:
    spec = read(
        {
            "optimizer": {
                "parameters": {"learning_rate": {"value": 0.1}, "momentum": {"value": 0.5}}
            },
            "scheduler": {
                "parameters": {"name": {"value": "cosine"}, "warmup_steps": {"value": 5}}
            },
            "regularization": {"parameters": {"swa": {"parameters": {"swa_lr": {"value": 0.01}}}}},
        },
        "grid",
    )
    assert list(spec.space) == [
        "optimizer.lr",
        "optimizer.momentum",
        "schedule.name",
        "schedule.warmup_steps",
        "regularization.swa.swa_lr",
    ]


def test_object_values_set_the_whole_entry() -> None:
    spec = read({"optimizer": {"values": [{"name": "adam", "lr": 0.001}, {"name": "sgd"}]}}, "grid")
    assert list(spec.space) == ["optimizer"]
    assert list(read({"optimizer": {"values": ["adam", "sgd"]}}, "grid").space) == [
        "optimizer.name"
    ]


def test_unknown_and_doubled_names() -> None:
    found = errors({"method": "grid", "parameters": {"learnig_rate": {"value": 0.1}}})
    assert len(found) == 1 and found[0].startswith("parameters.learnig_rate: unknown parameter")
    for name in ("learning_rate", "lr", "momentum", "dropout", "epochs", "warmup_steps"):
        assert name in found[0]
    assert "valid top-level fields" in found[0]
    nested = {
        "method": "grid",
        "parameters": {"optimizer": {"parameters": {"hidden_size": {"value": 64}}}},
    }
    assert_error(
        nested,
        "parameters.optimizer.parameters.hidden_size",
        "unknown parameter 'optimizer.hidden_size'",
    )
    doubled = {
        "method": "grid",
        "parameters": {"lr": {"value": 0.1}, "learning_rate": {"value": 0.2}},
    }
    assert_error(doubled, "parameters.learning_rate", "learning_rate and lr both set optimizer.lr")


def test_budget_kind_follows_the_swept_one() -> None:
    spec = read({"max_steps": {"values": [100, 300]}}, "grid")
    assert spec.base.budget.max_steps == 300 and spec.base.budget.epochs is None
    spec = read(
        {"epochs": {"min": 1, "max": 3}},
        "random",
        base={"task": "digits", "budget": {"max_steps": 9}},
    )
    assert spec.base.budget.epochs == 3 and spec.base.budget.max_steps is None
    both = {"method": "grid", "parameters": {"epochs": {"value": 1}, "max_steps": {"value": 5}}}
    assert_error(both, "parameters.max_steps", "sweep epochs or max_steps, not both")


# -- the file around the parameters ---------------------------------------------------------
def test_top_level_keys() -> None:
    spec = parse_wandb(
        {
            "program": "train.py",
            "command": ["${env}", "python", "${program}"],
            "entity": "me",
            "project": "p",
            "name": "study",
            "description": "lr sweep",
            "method": "grid",
            "metric": {"name": "val_accuracy", "goal": "maximize"},
            "run_cap": 7,
            "parameters": {"lr": {"values": [0.1]}},
            "base": {"task": "regression", "eval_every": 5},
            "max_concurrent": 2,
            "seed": 3,
        }
    )
    assert (spec.name, spec.description, spec.method, spec.max_trials) == (
        "study",
        "lr sweep",
        "grid",
        7,
    )
    assert (spec.metric.name, spec.metric.goal) == ("val_accuracy", "maximize")
    assert (spec.base.task.name, spec.base.eval_every) == ("regression", 5)
    assert (spec.max_concurrent, spec.seed, spec.early_stop) == (2, 3, None)
    default = read({"lr": {"values": [0.1]}}, "grid")
    assert default.base.task.name == "digits" and default.metric.name == "val_loss"


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"parameters": {"lr": {"value": 1}}}, "method", "method is required"),
        ({"method": "custom", "parameters": {"lr": {"value": 1}}}, "method", "custom"),
        ({"method": "hyperopt", "parameters": {"lr": {"value": 1}}}, "method", "got 'hyperopt'"),
        ({"method": "grid"}, "parameters", "parameters is required"),
        ({"method": "grid", "parameters": {}}, "parameters", "parameters is required"),
        (
            {"method": "grid", "parameters": {"lr": {"value": 1}}, "colour": 1},
            "colour",
            "valid: apiVersion, base",
        ),
        (
            {"method": "grid", "parameters": {"lr": {"value": 1}}, "metrics": []},
            "metrics",
            "multi-objective",
        ),
        (
            {"method": "grid", "parameters": {"lr": {"value": 1}}, "scheduler": {}},
            "scheduler",
            "not supported",
        ),
        (
            {
                "method": "grid",
                "parameters": {"lr": {"value": 1}},
                "metric": {"name": "x", "target": "low"},
            },
            "metric.target",
            "valid number",
        ),
        (
            {"method": "grid", "parameters": {"lr": {"value": 1}}, "metric": {"goal": "minimize"}},
            "metric.name",
            "needs the name",
        ),
        (
            {
                "method": "grid",
                "parameters": {"lr": {"value": 1}},
                "metric": {"name": "x", "goal": "max"},
            },
            "metric.goal",
            "'minimize' or 'maximize'",
        ),
        (
            {"method": "grid", "parameters": {"lr": {"value": 1}}, "run_cap": -1},
            "run_cap",
            "greater than or equal to 1",
        ),
        (
            {"method": "grid", "parameters": {"lr": {"value": 1}}, "base": "digits"},
            "base",
            "native trial spec",
        ),
        (
            {
                "method": "grid",
                "parameters": {"lr": {"value": 1}},
                "base": {"task": "digits", "seed": -1},
            },
            "base.seed",
            "greater than or equal to 0",
        ),
        (["method", "grid"], "", "a W&B sweep file is a mapping"),
    ],
)
def test_file_errors(config: Any, field: str, fragment: str) -> None:
    assert_error(config, field, fragment)


@pytest.mark.parametrize(
    ("param", "field", "fragment"),
    [
        (
            {"distribution": "log_uniform_values", "min": 0, "max": 1},
            ".min",
            "log_uniform_values needs min > 0",
        ),
        (
            {"distribution": "uniform", "min": 1, "max": 1},
            ".min",
            "min (1.0) must be less than max (1.0)",
        ),
        (
            {"distribution": "log_uniform", "min": -1, "max": -5},
            ".min",
            "min (-1) must be less than max (-5)",
        ),
        (
            {"distribution": "log_uniform", "min": 1e-5, "max": 800},
            ".max",
            "exp(800) is out of range",
        ),
        ({"distribution": "log_uniform", "min": -800, "max": 1}, ".min", "use log_uniform_values"),
        (
            {"distribution": "int_uniform", "min": 0.5, "max": 3},
            ".min",
            "int_uniform needs whole min and max",
        ),
        ({"distribution": "uniform", "max": 1}, ".min", "min is required"),
        (
            {"distribution": "uniform", "min": "0", "max": 1},
            ".min",
            "min must be a finite number (got '0')",
        ),
        ({"min": True, "max": 3}, ".min", "must be a finite number (got True)"),
        ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}, ".q", "greater than 0"),
        ({"distribution": "normal", "sigma": 0}, ".sigma", "greater than 0"),
        ({"distribution": "beta", "a": -1}, ".a", "greater than 0"),
        ({"distribution": "gamma"}, ".distribution", "W&B's distributions: constant, categorical"),
        (
            {"distribution": "normal", "min": 0},
            ".min",
            "unknown key 'min' for a normal parameter; valid keys: distribution, mu, sigma",
        ),
        (
            {"values": [1, 2], "probabilities": [1]},
            ".probabilities",
            "probabilities has 1 entries for 2 values",
        ),
        ({"values": [1, 2], "probabilities": [0.5, 0.6]}, ".probabilities", "sum to 1.1"),
        ({"values": [1, 2], "probabilities": [1.5, -0.5]}, ".probabilities[1]", ">= 0"),
        (
            {"distribution": "categorical_w_probabilities", "values": [1]},
            ".probabilities",
            "needs probabilities",
        ),
        ({"values": []}, ".values", "at least 1 item"),
        ({"values": 3}, ".values", "valid list"),
        ({"max": 3}, "", "cannot tell the distribution"),
        ([0.1, 0.01], "", "a parameter is a mapping"),
        ({"parameters": {}}, ".parameters", "a group's parameters is a non-empty mapping"),
        (
            {"parameters": {"lr": {"value": 1}}, "values": [1]},
            ".values",
            "for a group of parameters",
        ),
    ],
)
def test_parameter_errors_point_into_the_file(param: Any, field: str, fragment: str) -> None:
    assert_error(
        {"method": "random", "parameters": {"momentum": param}},
        f"parameters.momentum{field}",
        fragment,
    )


def test_all_problems_are_reported_together() -> None:
    found = errors(
        {
            "method": "random",
            "parameters": {
                "lr": {"distribution": "log_uniform_values", "min": 0, "max": 1},
                "momentum": {"distribution": "beta", "a": 0},
            },
            "early_terminate": {"type": "hyperband"},
            "bogus": 1,
        }
    )
    fields = sorted(e.split(":")[0] for e in found)
    assert fields == ["bogus", "early_terminate", "parameters.lr.min", "parameters.momentum.a"]


# -- early_terminate ------------------------------------------------------------------------
def early(**hyperband: Any) -> HyperbandStop:
    spec = read(
        {"lr": {"values": [0.1]}}, "grid", early_terminate={"type": "hyperband", **hyperband}
    )
    assert isinstance(spec.early_stop, HyperbandStop)
    return spec.early_stop


def test_early_terminate_becomes_early_stop() -> None:
    # W&B's strict is on unless the file turns it off
    assert early(min_iter=3) == HyperbandStop(min_resource=3, reduction_factor=3, strict=True)
    assert early(max_iter=27, s=2, eta=2.5, strict=False) == HyperbandStop(
        max_resource=27, brackets=2, reduction_factor=2.5, strict=False
    )
    assert early(max_iter=27, s=2.0).brackets == 2


@pytest.mark.parametrize(
    ("hyperband", "horizon", "brackets"),
    [
        # W&B's documented examples
        ({"min_iter": 3}, 100, [3, 9, 27, 81]),
        ({"max_iter": 27, "s": 2}, None, [3, 9]),
        # the same rules with other numbers
        ({"min_iter": 3, "eta": 2}, 50, [3, 6, 12, 24, 48]),
        ({"min_iter": 1, "eta": 4}, 100, [1, 4, 16, 64]),
        ({"max_iter": 81, "s": 3}, None, [3, 9, 27]),
        ({"max_iter": 81, "s": 3, "eta": 2}, None, [10, 20, 40]),
        ({"max_iter": 100, "s": 4, "eta": 3}, None, [1, 3, 11, 33]),
        ({"max_iter": 9, "s": 5}, None, [1, 3]),  # stops before a bracket below 1
        ({"max_iter": 50, "s": 2, "eta": 1.5}, None, [22, 33]),
    ],
)
def test_hyperband_brackets_as_wandb_documents(
    hyperband: dict[str, Any], horizon: int | None, brackets: list[int]
) -> None:
    assert hyperband_rungs(early(**hyperband), horizon) == brackets


@pytest.mark.parametrize(
    ("hyperband", "field", "fragment"),
    [
        ({}, "early_terminate", "hyperband needs min_iter, or max_iter with s"),
        ({"max_iter": 27}, "early_terminate.s", "max_iter needs s"),
        ({"s": 2}, "early_terminate", "hyperband needs min_iter, or max_iter with s"),
        ({"min_iter": 1, "max_iter": 27, "s": 2}, "early_terminate.min_iter", "set min_iter"),
        ({"min_iter": 1, "eta": 1}, "early_terminate.eta", "greater than 1"),
        ({"min_iter": 0}, "early_terminate.min_iter", "greater than or equal to 1"),
        ({"max_iter": 27, "s": 1.5}, "early_terminate.s", "valid integer"),
        ({"min_iter": 1, "eta": 3, "period": 2}, "early_terminate.period", "unknown key 'period'"),
        ({"type": "envelope", "min_iter": 1}, "early_terminate.type", "needs type hyperband"),
    ],
)
def test_early_terminate_errors(hyperband: dict[str, Any], field: str, fragment: str) -> None:
    config = {"method": "grid", "parameters": {"lr": {"values": [0.1]}}}
    assert_error({**config, "early_terminate": {"type": "hyperband", **hyperband}}, field, fragment)


def test_yaml_reads_exponent_floats() -> None:
    text = b"lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}\n"
    config = load_yaml(text)
    assert isinstance(config, dict) and isinstance(config["lr"], dict)
    assert one(config["lr"]) == dist("log_uniform", low=1e-5, high=0.1)
