"""One swept parameter of a sweep's search space, in its stored form.

Forms (W&B-sweep-like):
- a bare list `[0.1, 0.01]` or `{"values": [...]}`: choose among these values, uniformly
  or, with `{"values": [...], "probabilities": [...]}`, with those weights (method random
  only: a grid enumerates every value and bayes has no prior to put them in);
- `{"value": x}`: a constant;
- `{"distribution": ..., <its arguments>}`: sampled (methods random and bayes).

Native distributions and their arguments. Bounds are always the values themselves (as in
Optuna), never exponents, so one name means one thing:

native name      arguments      a value X                               W&B's name
uniform          low, high      X ~ U(low, high)                        uniform
log_uniform      low, high > 0  log X ~ U(log low, log high)            log_uniform_values
inv_log_uniform  low, high > 0  log(1/X) ~ U(log(1/high), log(1/low))   inv_log_uniform_values
int_uniform      low, high      an integer in [low, high], ends in      int_uniform
q_uniform        low, high, q   round(X / q) * q, X uniform             q_uniform
q_log_uniform    low, high, q   round(X / q) * q, X log_uniform         q_log_uniform_values
normal           mu, sigma      X ~ N(mu, sigma)                        normal
q_normal         mu, sigma, q   round(X / q) * q, X normal              q_normal
log_normal       mu, sigma      log X ~ N(mu, sigma)                    log_normal
q_log_normal     mu, sigma, q   round(X / q) * q, X log_normal          q_log_normal
beta             a, b > 0       X ~ Beta(a, b), in [0, 1]               beta
q_beta           a, b, q        round(X / q) * q, X beta                q_beta
(q > 0, sigma > 0, low < high everywhere.)

W&B's exponent-bound forms (`log_uniform`, `q_log_uniform`, `inv_log_uniform`, whose min
and max are natural-log exponents) exist only in W&B sweep files; `services.specs.wandb`
turns them into the rows above (low = exp(min), ...). A `q` written as an integer (`q: 1`)
gives integer values, a float `q` float values, as W&B does.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from services.specs.common import StrictModel, fail, rule_error

__all__ = [
    "DISTRIBUTIONS",
    "LOG_SCALE",
    "PROBABILITY_TOLERANCE",
    "ConstantParam",
    "DistributionName",
    "DistributionParam",
    "ParamSpec",
    "ValuesParam",
    "param_choices",
    "quantize",
    "unquantized",
]

DistributionName = Literal[
    "uniform",
    "log_uniform",
    "int_uniform",
    "q_uniform",
    "q_log_uniform",
    "normal",
    "log_normal",
    "inv_log_uniform",
    "q_normal",
    "q_log_normal",
    "beta",
    "q_beta",
]

# Which arguments each distribution takes; the others must stay unset.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "log_uniform": ("low", "high"),
    "inv_log_uniform": ("low", "high"),
    "int_uniform": ("low", "high"),
    "q_uniform": ("low", "high", "q"),
    "q_log_uniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
    "q_beta": ("a", "b", "q"),
}
# Bounds that must be > 0 because the distribution lives on the log scale.
LOG_SCALE = ("log_uniform", "q_log_uniform", "inv_log_uniform")
_ALL_ARGS = ("low", "high", "q", "mu", "sigma", "a", "b")
# How far from 1 the probabilities of a values parameter may sum (rounding in a file).
PROBABILITY_TOLERANCE = 1e-6
# exp(709.78) is the largest double; ten sigmas above mu keep every draw finite in practice.
_MAX_LOG_VALUE = 700.0


def quantize(value: float, q: int | float) -> int | float:
    """round(value / q) * q, an int when q is one (W&B's rule for integer steps)."""
    steps = round(value / q)
    if isinstance(q, int):
        return steps * q
    return float(steps * q)


def unquantized(distribution: str) -> str:
    """The distribution a q_* one rounds ("q_log_uniform" -> "log_uniform")."""
    return distribution.removeprefix("q_")


def _check_json(value: JsonValue, where: str = "value") -> None:
    # Values are stored as JSON: NUL is refused by PostgreSQL's JSONB, lone surrogates
    # (which JsonValue lets through) by UTF-8, and NaN/Infinity are not JSON at all.
    if isinstance(value, str):
        for char in value:
            if unicodedata.category(char) in ("Cc", "Cs") and char not in "\t\n\r":
                raise rule_error(f"{where} must not contain control characters (found {char!r})")
    elif isinstance(value, float) and not math.isfinite(value):
        raise rule_error(f"{where} must be a finite number (got {value})")
    elif isinstance(value, list):
        for item in value:
            _check_json(item, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, "key")
            _check_json(item, where)


class ValuesParam(StrictModel):
    """Choose among these values: all of them in a grid, one per trial otherwise, uniformly
    or with the weights in `probabilities` (one per value, summing to 1)."""

    spec_label: ClassVar[str] = "values parameter"

    values: list[JsonValue] = Field(min_length=1, max_length=10_000)
    probabilities: list[float] | None = Field(
        default=None,
        description="The chance of each value in method random, in the order of values; "
        "null: all alike.",
    )

    @field_validator("values")
    @classmethod
    def _storable(cls, values: list[JsonValue]) -> list[JsonValue]:
        _check_json(values)
        return values

    @model_validator(mode="after")
    def _weights_fit(self) -> ValuesParam:
        weights = self.probabilities
        if weights is None:
            return self
        if len(weights) != len(self.values):
            fail(
                ("probabilities",),
                f"probabilities has {len(weights)} entries for {len(self.values)} values; "
                "give one per value, in the same order",
            )
        for index, weight in enumerate(weights):
            if weight < 0:
                fail(("probabilities", index), f"a probability must be >= 0 (got {weight})")
        total = math.fsum(weights)
        if abs(total - 1) > PROBABILITY_TOLERANCE:
            fail(
                ("probabilities",),
                f"probabilities must sum to 1 (within {PROBABILITY_TOLERANCE:g}); "
                f"these sum to {total:.6g}",
            )
        return self

    @model_serializer(mode="wrap")
    def _without_unset_weights(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Unweighted values are stored and shown as they always were: {"values": [...]}.
        data: dict[str, Any] = handler(self)
        if data.get("probabilities") is None:
            data.pop("probabilities", None)
        return data


class ConstantParam(StrictModel):
    """The same value in every trial."""

    spec_label: ClassVar[str] = "constant parameter"

    value: JsonValue

    @field_validator("value")
    @classmethod
    def _storable(cls, value: JsonValue) -> JsonValue:
        _check_json(value)
        return value


def _native_name(value: Any) -> Any:
    # W&B's names for the same distributions are a likely slip; say which native one fits.
    if isinstance(value, str) and value.endswith("_values"):
        native = value.removesuffix("_values")
        if native in DISTRIBUTIONS:
            raise rule_error(
                f"unknown distribution {value!r}: native bounds are values already, so use "
                f"{native!r} (W&B's names are read from W&B sweep files only)"
            )
    if value in ("categorical", "constant"):
        form = "values: [...]" if value == "categorical" else "value: x"
        raise rule_error(f"distribution {value!r} is written {{{form}}} in a native spec")
    return value


class DistributionParam(StrictModel):
    """A distribution to sample from; which arguments apply depends on it (table above)."""

    spec_label: ClassVar[str] = "distribution parameter"

    distribution: Annotated[DistributionName, BeforeValidator(_native_name)]
    low: float | None = None
    high: float | None = None
    # int | float: an integer step keeps the values integers (batch sizes, step counts).
    q: int | float | None = Field(default=None, gt=0, description="Quantization step.")
    mu: float | None = None
    sigma: float | None = Field(default=None, gt=0)
    a: float | None = Field(default=None, gt=0, description="Beta's first shape.")
    b: float | None = Field(default=None, gt=0, description="Beta's second shape.")

    @model_validator(mode="after")
    def _arguments_fit(self) -> DistributionParam:
        takes = DISTRIBUTIONS[self.distribution]
        for arg in _ALL_ARGS:
            given = getattr(self, arg)
            if arg in takes and given is None:
                fail((arg,), f"{self.distribution} needs {arg} (it takes {', '.join(takes)})")
            if arg not in takes and given is not None:
                fail(
                    (arg,),
                    f"{arg} is not used by {self.distribution} (it takes {', '.join(takes)})",
                    given,
                )
        if self.low is not None and self.high is not None:
            self._check_bounds(self.low, self.high)
        if self.mu is not None and self.sigma is not None:
            self._check_normal(self.mu, self.sigma)
        return self

    def _check_bounds(self, low: float, high: float) -> None:
        if low >= high:
            fail(("low",), f"low ({low}) must be less than high ({high})", low)
        if not math.isfinite(high - low):
            fail(("high",), f"high - low must be a finite number (got {high} - {low})", high)
        if self.distribution in LOG_SCALE and low <= 0:
            fail(("low",), f"{self.distribution} needs low > 0 (got {low})", low)
        if self.distribution == "int_uniform" and not (low.is_integer() and high.is_integer()):
            fail(("low",), f"int_uniform needs whole low and high (got {low}, {high})", low)

    def _check_normal(self, mu: float, sigma: float) -> None:
        reach = mu + 10 * sigma
        if unquantized(self.distribution) == "log_normal" and reach > _MAX_LOG_VALUE:
            fail(
                ("mu",),
                f"{self.distribution} needs mu + 10 * sigma <= {_MAX_LOG_VALUE:g} so that "
                f"exp() of a draw stays finite (got {reach:g})",
                mu,
            )
        if not math.isfinite(reach) or not math.isfinite(mu - 10 * sigma):
            fail(("sigma",), f"mu +/- 10 * sigma must be finite (got mu={mu}, sigma={sigma})")


def _parse_param(value: Any) -> Any:
    # The form is chosen by its key, so errors name the form the user meant.
    if isinstance(value, list):
        return ValuesParam.model_validate({"values": value})
    if isinstance(value, dict):
        for key, model in (
            ("distribution", DistributionParam),
            ("values", ValuesParam),
            ("value", ConstantParam),
        ):
            if key in value:
                return model.model_validate(value)
    if isinstance(value, ValuesParam | ConstantParam | DistributionParam):
        return value
    raise rule_error(
        "a parameter must be a list of values, {values: [...]}, {value: x} or "
        f"{{distribution: ..., ...}} (got {value!r})"
    )


ParamSpec = Annotated[
    ValuesParam | ConstantParam | DistributionParam, BeforeValidator(_parse_param)
]


def param_choices(param: ValuesParam | ConstantParam | DistributionParam) -> list[JsonValue]:
    """The values a grid enumerates for `param`; a distribution has none (ValueError)."""
    if isinstance(param, ValuesParam):
        return list(param.values)
    if isinstance(param, ConstantParam):
        return [param.value]
    raise ValueError(f"a {param.distribution} distribution cannot be enumerated")
