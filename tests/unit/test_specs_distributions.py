"""The native distribution params: every distribution's arguments and rules, and W&B names
answered with the native one."""

from __future__ import annotations

from typing import Any

import pytest

from services.specs import DISTRIBUTIONS, DistributionParam, SweepSpec
from tests.support.specs import DISTRIBUTION_CASES, assert_rejected, trial

# Valid arguments for each distribution (the sampling tests' cases).
VALID = DISTRIBUTION_CASES


def test_every_distribution_is_listed_with_its_arguments() -> None:
    assert set(VALID) == set(DISTRIBUTIONS)
    for name, args in VALID.items():
        assert set(args) == set(DISTRIBUTIONS[name])


@pytest.mark.parametrize("name", sorted(VALID))
def test_each_distribution_validates_and_round_trips(name: str) -> None:
    spec = SweepSpec.model_validate(
        {
            "base": trial(),
            "method": "random",
            "space": {"regularization.dropout": {"distribution": name, **VALID[name]}},
        }
    )
    param = spec.space["regularization.dropout"]
    assert isinstance(param, DistributionParam) and param.distribution == name
    assert SweepSpec.model_validate_json(spec.model_dump_json()) == spec


def test_an_integer_q_stays_an_integer() -> None:
    as_int = DistributionParam(distribution="q_uniform", low=0, high=100, q=10)
    as_float = DistributionParam(distribution="q_uniform", low=0, high=1, q=0.5)
    assert isinstance(as_int.q, int) and isinstance(as_float.q, float)


@pytest.mark.parametrize(
    ("name", "args", "field", "rule"),
    [
        ("inv_log_uniform", {"low": 0, "high": 1}, "low", "inv_log_uniform needs low > 0"),
        ("inv_log_uniform", {"low": 2, "high": 1}, "low", "low (2.0) must be less than high"),
        ("q_normal", {"mu": 0, "sigma": 1}, "q", "q_normal needs q (it takes mu, sigma, q)"),
        ("q_normal", {"mu": 0, "sigma": 1, "q": -1}, "q", "greater than 0"),
        ("q_log_normal", {"mu": 0, "sigma": -1, "q": 1}, "sigma", "greater than 0"),
        ("beta", {"a": 0, "b": 1}, "a", "greater than 0"),
        ("beta", {"a": 1, "b": -2}, "b", "greater than 0"),
        ("beta", {"a": 1}, "b", "beta needs b (it takes a, b)"),
        ("q_beta", {"a": 1, "b": 1}, "q", "q_beta needs q"),
        ("normal", {"mu": 0, "sigma": 1, "a": 1}, "a", "a is not used by normal"),
        ("uniform", {"low": -1e308, "high": 1e308}, "high", "high - low must be"),
        ("log_normal", {"mu": 650, "sigma": 10}, "mu", "mu + 10 * sigma <= 700"),
        ("log_uniform_values", {"low": 1, "high": 2}, "distribution", "use 'log_uniform'"),
        ("inv_log_uniform_values", {}, "distribution", "use 'inv_log_uniform'"),
        ("categorical", {}, "distribution", "{values: [...]}"),
        ("constant", {}, "distribution", "{value: x}"),
    ],
)
def test_rules_name_the_field(name: str, args: dict[str, Any], field: str, rule: str) -> None:
    assert_rejected(DistributionParam, {"distribution": name, **args}, f"{field}: ", rule)
