"""Drawing a search-space parameter: directly (method random) or through Optuna (ask/tell).

`sample` draws a value with the documented meaning of each distribution (see the table in
`services.specs.params`). `to_optuna` gives the Optuna distribution a sampler asks in and
the transforms between its internal value and the parameter's value:

- uniform, log_uniform, int_uniform: Optuna's own Float/IntDistribution; the value is the
  internal value.
- inv_log_uniform: internal 1/X on a log scale, which is the definition.
- normal, log_normal, beta: internal quantile u in (EPS, 1 - EPS), mapped through the
  inverse CDF. A sampler that draws u uniformly draws X from the distribution itself
  (truncated at the EPS quantiles), and TPE models the space W&B's Bayesian search uses.
- q_*: the unquantized internal value, rounded by the transform; the inverse returns a
  representative internal value that rounds back to the same parameter value.
- values and constants: the index of a choice (choices may be objects, which Optuna's
  CategoricalDistribution cannot hold). Weighted values (`probabilities`) are method
  random's alone: the sweep spec refuses them for bayes, whose samplers take no prior.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import JsonValue
from scipy import special

from services.specs.params import (
    ConstantParam,
    DistributionParam,
    ValuesParam,
    quantize,
    unquantized,
)

__all__ = ["EPS", "OptunaParam", "Param", "quantize", "sample", "to_optuna"]

Param = ValuesParam | ConstantParam | DistributionParam
Number = int | float
# Quantile bounds for the inverse-CDF distributions: N(0, 1) is cut at about +/-6 sigma.
EPS = 1e-9
_STD_NORMAL = NormalDist()


def _arg(param: DistributionParam, name: str) -> float:
    value = getattr(param, name)
    if value is None:  # the spec's validation makes every taken argument present
        raise ValueError(f"{param.distribution} has no {name}")
    return float(value)


def _clip(value: float, low: float, high: float) -> float:
    # exp(log(x)) and 1/(1/x) can land an ulp outside the bounds they started in.
    return min(max(value, low), high)


# -- sampling -------------------------------------------------------------------------------
def _log_uniform(p: DistributionParam, rng: np.random.Generator) -> float:
    low, high = _arg(p, "low"), _arg(p, "high")
    return _clip(math.exp(rng.uniform(math.log(low), math.log(high))), low, high)


def _inv_log_uniform(p: DistributionParam, rng: np.random.Generator) -> float:
    low, high = _arg(p, "low"), _arg(p, "high")
    inverse = math.exp(rng.uniform(math.log(1 / high), math.log(1 / low)))
    return _clip(1 / inverse, low, high)


def _int_uniform(p: DistributionParam, rng: np.random.Generator) -> float:
    return int(rng.integers(int(_arg(p, "low")), int(_arg(p, "high")), endpoint=True))


_SAMPLERS: dict[str, Callable[[DistributionParam, np.random.Generator], float]] = {
    "uniform": lambda p, rng: float(rng.uniform(_arg(p, "low"), _arg(p, "high"))),
    "log_uniform": _log_uniform,
    "inv_log_uniform": _inv_log_uniform,
    "int_uniform": _int_uniform,
    "normal": lambda p, rng: float(rng.normal(_arg(p, "mu"), _arg(p, "sigma"))),
    "log_normal": lambda p, rng: math.exp(rng.normal(_arg(p, "mu"), _arg(p, "sigma"))),
    "beta": lambda p, rng: float(rng.beta(_arg(p, "a"), _arg(p, "b"))),
}


def _choice(param: ValuesParam, rng: np.random.Generator) -> int:
    if param.probabilities is None:
        return int(rng.integers(len(param.values)))
    # The spec lets the weights sum to 1 within a tolerance; numpy wants them exact.
    weights = np.asarray(param.probabilities, dtype=float)
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def sample(param: Param, rng: np.random.Generator) -> JsonValue:
    """One value of `param`: a choice among values (uniform, or by its probabilities), the
    constant, or a draw."""
    if isinstance(param, ValuesParam):
        return copy.deepcopy(param.values[_choice(param, rng)])
    if isinstance(param, ConstantParam):
        return copy.deepcopy(param.value)
    value = _SAMPLERS[unquantized(param.distribution)](param, rng)
    return value if param.q is None else quantize(value, param.q)


# -- Optuna ----------------------------------------------------------------------------------
Internal = int | float


@dataclass(frozen=True)
class OptunaParam:
    """How a parameter is asked for through Optuna.

    `to_value` maps the internal value Optuna samples to the parameter's value;
    `to_internal` maps a value back (to tell Optuna about a trial it did not ask for).
    """

    distribution: BaseDistribution
    to_value: Callable[[Internal], JsonValue]
    to_internal: Callable[[JsonValue], Internal]


def _number(value: JsonValue) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _index_of(choices: list[JsonValue], value: JsonValue) -> int:
    # By type as well as by ==, so that True is not found as 1 (nor 1 as 1.0).
    for index, choice in enumerate(choices):
        if type(choice) is type(value) and choice == value:
            return index
    raise ValueError(f"{value!r} is not one of the choices {choices!r}")


def _choices(choices: list[JsonValue]) -> OptunaParam:
    return OptunaParam(
        CategoricalDistribution(list(range(len(choices)))),
        lambda index: copy.deepcopy(choices[int(index)]),
        lambda value: _index_of(choices, value),
    )


Continuous = tuple[BaseDistribution, Callable[[float], float], Callable[[float], float]]


def _quantile(to_x: Callable[[float], float], to_u: Callable[[float], float]) -> Continuous:
    return FloatDistribution(EPS, 1 - EPS), to_x, lambda x: _clip(to_u(x), EPS, 1 - EPS)


def _log_normal_u(mu: float, sigma: float) -> Callable[[float], float]:
    def to_u(x: float) -> float:
        # A quantized draw can round down to 0: the lowest quantile represents it.
        return 0.0 if x <= 0 else _STD_NORMAL.cdf((math.log(x) - mu) / sigma)

    return to_u


def _continuous(param: DistributionParam) -> Continuous:
    """Optuna distribution, internal -> X and X -> internal for the unquantized base."""
    name = unquantized(param.distribution)
    if name in ("uniform", "log_uniform", "int_uniform"):
        low, high = _arg(param, "low"), _arg(param, "high")
        if name == "int_uniform":
            dist: BaseDistribution = IntDistribution(int(low), int(high))
            return dist, lambda x: int(x), lambda x: round(_clip(x, low, high))
        dist = FloatDistribution(low, high, log=name == "log_uniform")
        return dist, float, lambda x: _clip(x, low, high)
    if name == "inv_log_uniform":
        low, high = _arg(param, "low"), _arg(param, "high")
        dist = FloatDistribution(1 / high, 1 / low, log=True)
        return dist, lambda y: _clip(1 / y, low, high), lambda x: _clip(1 / x, 1 / high, 1 / low)
    if name in ("normal", "log_normal"):
        mu, sigma = _arg(param, "mu"), _arg(param, "sigma")
        if name == "normal":
            return _quantile(
                lambda u: mu + sigma * _STD_NORMAL.inv_cdf(u),
                lambda x: _STD_NORMAL.cdf((x - mu) / sigma),
            )
        return _quantile(
            lambda u: math.exp(mu + sigma * _STD_NORMAL.inv_cdf(u)), _log_normal_u(mu, sigma)
        )
    a, b = _arg(param, "a"), _arg(param, "b")
    return _quantile(
        lambda u: float(special.betaincinv(a, b, u)),
        lambda x: float(special.betainc(a, b, _clip(x, 0.0, 1.0))),
    )


def to_optuna(param: Param) -> OptunaParam:
    """The Optuna distribution for `param` and the transforms to and from its values."""
    if isinstance(param, ValuesParam):
        return _choices(list(param.values))
    if isinstance(param, ConstantParam):
        return _choices([param.value])
    dist, to_x, to_internal = _continuous(param)
    q = param.q
    # A quantized value is a multiple of q inside its own rounding bin (clipped into the
    # support by to_internal), so it maps back to an internal value that rounds to it.
    to_value = to_x if q is None else lambda internal: quantize(to_x(internal), q)
    return OptunaParam(dist, to_value, lambda value: to_internal(_number(value)))
