"""Drawing parameters: support, quantization, shape (log scale, moments) and the Optuna
mapping's round trip. Seeds are fixed, tolerances generous: a failure is a wrong formula,
not bad luck."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np
import optuna
import pytest
from scipy import stats

from services.search import EPS, quantize, sample, to_optuna
from services.specs import DISTRIBUTIONS, ConstantParam, DistributionParam, ValuesParam
from tests.support.specs import DISTRIBUTION_CASES

N = 4000
# Kolmogorov-Smirnov: the 1% critical distance for N draws is 1.63 / sqrt(N) ~ 0.026.
KS_LIMIT = 0.035


def param(name: str, **args: Any) -> DistributionParam:
    return DistributionParam.model_validate(
        {"distribution": name, **DISTRIBUTION_CASES[name], **args}
    )


def draws(p: DistributionParam, n: int = N, seed: int = 7) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [sample(p, rng) for _ in range(n)]


def in_support(p: DistributionParam, value: Any) -> bool:
    """Whether `value` can come out of `p` (quantized values may round past the bounds)."""
    assert isinstance(value, int | float) and not isinstance(value, bool)
    if not math.isfinite(value):
        return False
    if p.q is not None:
        steps = value / p.q
        if abs(steps - round(steps)) > 1e-9:
            return False
        if isinstance(p.q, int) and not isinstance(value, int):
            return False
    low, high = p.low, p.high
    if p.distribution == "int_uniform":
        return isinstance(value, int) and low is not None and high is not None
    if low is not None and high is not None:
        if p.q is not None:
            low, high = round(low / p.q) * p.q, round(high / p.q) * p.q
        return low <= value <= high
    if p.distribution.endswith("log_normal"):
        return value >= 0 if p.q is not None else value > 0
    if p.distribution.endswith("beta"):
        return 0 <= value <= (round(1 / p.q) * p.q if p.q is not None else 1)
    return True


def test_every_distribution_has_a_case() -> None:
    assert set(DISTRIBUTION_CASES) == set(DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(DISTRIBUTION_CASES))
def test_samples_stay_in_support(name: str) -> None:
    p = param(name)
    values = draws(p)
    outside = [v for v in values if not in_support(p, v)]
    assert not outside, outside[:5]
    assert len(set(values)) > 5  # it does vary


def test_int_uniform_hits_every_integer_including_both_ends_evenly() -> None:
    counts = Counter(draws(param("int_uniform")))
    assert sorted(counts) == list(range(-3, 5))
    assert all(abs(c / N - 1 / 8) < 0.025 for c in counts.values()), counts


def test_quantization_rounds_to_the_nearest_multiple() -> None:
    # q_uniform over [0, 10] with q 1: the end bins are half as wide as the inner ones.
    counts = Counter(draws(param("q_uniform")))
    assert sorted(counts) == list(range(11))
    assert all(isinstance(v, int) for v in counts)
    assert abs(counts[0] / N - 0.05) < 0.015 and abs(counts[10] / N - 0.05) < 0.015
    assert all(abs(counts[k] / N - 0.1) < 0.02 for k in range(1, 10)), counts
    # a float q gives floats, an int q ints
    assert all(isinstance(v, float) for v in draws(param("q_normal"), n=50))
    assert quantize(7.4, 2) == 8 and isinstance(quantize(7.4, 2), int)
    assert quantize(0.26, 0.25) == pytest.approx(0.25)
    assert quantize(-0.13, 0.25) == pytest.approx(-0.25)


def test_uniform_is_flat() -> None:
    ks = stats.kstest(draws(param("uniform")), "uniform", args=(-2.0, 5.0))
    assert ks.statistic < KS_LIMIT


def test_log_uniform_is_flat_on_the_log_scale() -> None:
    logs = np.log(draws(param("log_uniform")))
    low, high = math.log(1e-5), math.log(1e-1)
    assert stats.kstest(logs, "uniform", args=(low, high - low)).statistic < KS_LIMIT
    # each decade gets a quarter of the draws: 1e-5..1e-4, ..., 1e-2..1e-1
    decades = Counter(math.floor(v / math.log(10)) for v in logs)
    assert sorted(decades) == [-5, -4, -3, -2]
    assert all(abs(c / N - 0.25) < 0.03 for c in decades.values()), decades


def test_inv_log_uniform_has_a_log_uniform_reciprocal() -> None:
    values = draws(param("inv_log_uniform"))
    inv_logs = np.log(1 / np.array(values))
    low, high = math.log(1 / 100.0), math.log(1 / 0.01)
    assert stats.kstest(inv_logs, "uniform", args=(low, high - low)).statistic < KS_LIMIT


def test_q_log_uniform_follows_the_log_scale_before_rounding() -> None:
    values = np.array(draws(param("q_log_uniform")), dtype=float)
    # with q 10 on [1, 1000], log10 of the draws is flat: a third per decade above 10
    assert abs(np.mean(values < 100) - (2 / 3)) < 0.04  # 10 is log10 1, 100 is log10 2
    assert abs(np.median(np.log10(np.maximum(values, 1))) - 1.5) < 0.1


def test_normal_moments_and_shape() -> None:
    values = np.array(draws(param("normal")))
    assert abs(values.mean() - 1.5) < 0.1 and abs(values.std() - 2.0) < 0.1
    assert stats.kstest(values, "norm", args=(1.5, 2.0)).statistic < KS_LIMIT


def test_log_normal_is_normal_on_the_log_scale() -> None:
    logs = np.log(draws(param("log_normal")))
    assert abs(logs.mean() + 3.0) < 0.03 and abs(logs.std() - 0.5) < 0.03
    assert stats.kstest(logs, "norm", args=(-3.0, 0.5)).statistic < KS_LIMIT


def test_beta_moments() -> None:
    values = np.array(draws(param("beta")))
    a, b = 2.0, 5.0
    assert abs(values.mean() - a / (a + b)) < 0.01
    assert abs(values.var() - a * b / ((a + b) ** 2 * (a + b + 1))) < 0.003
    assert stats.kstest(values, "beta", args=(a, b)).statistic < KS_LIMIT


def test_sampling_is_reproducible_from_the_seed() -> None:
    p = param("log_uniform")
    assert draws(p, n=20, seed=3) == draws(p, n=20, seed=3)
    assert draws(p, n=20, seed=3) != draws(p, n=20, seed=4)


def test_values_and_constants() -> None:
    choices = ValuesParam(values=[0.1, "adam", {"name": "sgd"}])
    counts = Counter(repr(v) for v in draws_any(choices))
    assert len(counts) == 3 and all(abs(c / 600 - 1 / 3) < 0.08 for c in counts.values())
    const = ConstantParam(value={"name": "adam"})
    drawn = sample(const, np.random.default_rng(0))
    assert drawn == {"name": "adam"} and drawn is not const.value  # a copy, not the spec's


def draws_any(p: ValuesParam, n: int = 600) -> list[Any]:
    rng = np.random.default_rng(1)
    return [sample(p, rng) for _ in range(n)]


def test_weighted_values_are_drawn_by_their_probabilities() -> None:
    weights = [0.6, 0.3, 0.1 - 5e-7, 5e-7]  # sums to 1; a weight that is all but zero
    p = ValuesParam(values=["adam", "sgd", {"name": "adamw"}, "rmsprop"], probabilities=weights)
    counts = Counter(repr(v) for v in draws_any(p, n=2000))
    observed = [counts[repr(v)] for v in p.values]
    # Each share within 3.5 binomial standard deviations of its probability ...
    for count, weight in zip(observed, weights, strict=True):
        assert abs(count - 2000 * weight) <= 3.5 * math.sqrt(2000 * weight * (1 - weight)) + 1
    # ... and the counts as a whole fit the weights (chi-square over the three real ones).
    expected = [2000 * w for w in weights[:3]]
    scale = sum(observed[:3]) / sum(expected)
    assert stats.chisquare(observed[:3], [e * scale for e in expected]).pvalue > 0.01
    # Uniform draws are unchanged by the feature: the same sequence as before it.
    plain = ValuesParam(values=["adam", "sgd", "adamw"])
    rng = np.random.default_rng(1)
    assert draws_any(plain, n=50) == [plain.values[int(rng.integers(3))] for _ in range(50)]


def test_a_zero_weight_is_never_drawn() -> None:
    p = ValuesParam(values=[1, 2, 3], probabilities=[0.5, 0.0, 0.5])
    assert set(draws_any(p, n=1000)) == {1, 3}


@pytest.mark.parametrize(
    ("probabilities", "rule"),
    [
        ([0.5], "probabilities has 1 entries for 2 values"),
        ([0.5, 0.6], "probabilities must sum to 1 (within 1e-06); these sum to 1.1"),
        ([1.2, -0.2], "a probability must be >= 0 (got -0.2)"),
        ([0.5, float("nan")], "finite number"),
    ],
)
def test_weights_must_fit_the_values(probabilities: list[float], rule: str) -> None:
    with pytest.raises(ValueError, match=re.escape(rule)):
        ValuesParam(values=["a", "b"], probabilities=probabilities)
    ValuesParam(values=["a", "b"], probabilities=[0.5, 0.5 + 5e-7])  # within the tolerance
    assert ValuesParam(values=["a"]).model_dump() == {"values": ["a"]}  # stored as before


# -- Optuna --------------------------------------------------------------------------------
def optuna_draws(name: str, n: int = 300) -> tuple[list[Any], list[Any]]:
    """(internal, value) pairs asked from a seeded random sampler through ask/tell."""
    mapping = to_optuna(param(name))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=11))
    internals, values = [], []
    for _ in range(n):
        trial = study.ask({"x": mapping.distribution})
        internal = trial.params["x"]
        internals.append(internal)
        values.append(mapping.to_value(internal))
        study.tell(trial, 0.0)
    return internals, values


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", sorted(DISTRIBUTION_CASES))
def test_optuna_values_stay_in_support(name: str) -> None:
    p = param(name)
    _, values = optuna_draws(name)
    outside = [v for v in values if not in_support(p, v)]
    assert not outside, outside[:5]


@pytest.mark.parametrize("name", sorted(DISTRIBUTION_CASES))
def test_optuna_round_trip(name: str) -> None:
    p = param(name)
    mapping = to_optuna(p)
    internals, values = optuna_draws(name, n=200)
    for internal, value in zip(internals, values, strict=True):
        back = mapping.to_internal(value)
        assert mapping.distribution._contains(back), (internal, value, back)
        assert mapping.to_value(back) == pytest.approx(value, rel=1e-9, abs=1e-12)
        if p.q is None:  # unquantized: the internal value itself comes back
            assert back == pytest.approx(internal, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", sorted(DISTRIBUTION_CASES))
def test_optuna_is_told_a_trial_it_did_not_ask_for(name: str) -> None:
    p = param(name)
    mapping = to_optuna(p)
    value = sample(p, np.random.default_rng(5))
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": mapping.to_internal(value)},
            distributions={"x": mapping.distribution},
            value=1.0,
        )
    )
    stored = study.trials[0].params["x"]
    assert mapping.to_value(stored) == pytest.approx(value, rel=1e-9, abs=1e-12)


def mapped(name: str, n: int = 3000) -> np.ndarray:
    """Values of the quantile-mapped distributions for uniform quantiles, which is what a
    random sampler draws for them (asking through a study 3000 times takes seconds)."""
    mapping = to_optuna(param(name))
    assert mapping.distribution == optuna.distributions.FloatDistribution(EPS, 1 - EPS)
    quantiles = np.random.default_rng(2).uniform(EPS, 1 - EPS, n)
    return np.array([mapping.to_value(float(u)) for u in quantiles])


def test_optuna_quantile_mapping_reproduces_the_distribution() -> None:
    normal = mapped("normal")
    assert abs(normal.mean() - 1.5) < 0.1 and abs(normal.std() - 2.0) < 0.1
    assert stats.kstest(normal, "norm", args=(1.5, 2.0)).statistic < KS_LIMIT
    assert stats.kstest(np.log(mapped("log_normal")), "norm", args=(-3.0, 0.5)).statistic < KS_LIMIT
    assert stats.kstest(mapped("beta"), "beta", args=(2.0, 5.0)).statistic < KS_LIMIT
    inv = optuna_draws("inv_log_uniform", n=1000)[1]
    low, high = math.log(0.01), math.log(100.0)
    ks = stats.kstest(np.log(1 / np.array(inv)), "uniform", args=(low, high - low))
    assert ks.statistic < 0.05


def test_optuna_log_uniform_is_optunas_own() -> None:
    mapping = to_optuna(param("log_uniform"))
    assert mapping.distribution == optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)
    assert mapping.to_value(0.003) == 0.003 and mapping.to_internal(0.003) == 0.003
    ints = to_optuna(param("int_uniform"))
    assert ints.distribution == optuna.distributions.IntDistribution(-3, 4)


def test_optuna_choices_are_indices() -> None:
    choices = ValuesParam(values=[1, True, 1.0, {"name": "adam"}])
    mapping = to_optuna(choices)
    assert mapping.distribution == optuna.distributions.CategoricalDistribution([0, 1, 2, 3])
    assert [mapping.to_value(i) for i in range(4)] == [1, True, 1.0, {"name": "adam"}]
    # matched by type too: True is not taken for 1, nor 1.0 for 1
    assert [mapping.to_internal(v) for v in (1, True, 1.0, {"name": "adam"})] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="not one of the choices"):
        mapping.to_internal("sgd")
    const = to_optuna(ConstantParam(value="cosine"))
    assert const.to_value(0) == "cosine" and const.to_internal("cosine") == 0


def test_optuna_inverse_refuses_a_non_number() -> None:
    with pytest.raises(ValueError, match="expected a number"):
        to_optuna(param("uniform")).to_internal("0.5")
    with pytest.raises(ValueError, match="expected a number"):
        to_optuna(param("uniform")).to_internal(True)
