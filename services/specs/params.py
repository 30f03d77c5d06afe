"""One swept parameter of a sweep's search space, in its stored form.

Forms (W&B-sweep-like):
- a bare list `[0.1, 0.01]` or `{"values": [...]}`: choose among these values;
- `{"value": x}`: a constant;
- `{"distribution": ..., low/high/q/mu/sigma}`: sampled (methods random and bayes).

Distribution bounds are the values themselves: `log_uniform` between 1e-5 and 1e-1 means
those lrs (Optuna's `log=True`; W&B calls it `log_uniform_values`).
"""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, JsonValue, field_validator, model_validator

from services.specs.common import StrictModel, fail, rule_error

__all__ = [
    "DISTRIBUTIONS",
    "ConstantParam",
    "DistributionName",
    "DistributionParam",
    "ParamSpec",
    "ValuesParam",
    "param_choices",
]

DistributionName = Literal[
    "uniform", "log_uniform", "int_uniform", "q_uniform", "q_log_uniform", "normal", "log_normal"
]

# Which of low/high/q/mu/sigma each distribution takes; the others must stay unset.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "log_uniform": ("low", "high"),
    "int_uniform": ("low", "high"),
    "q_uniform": ("low", "high", "q"),
    "q_log_uniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"),
    "log_normal": ("mu", "sigma"),
}
_LOG_SCALE = ("log_uniform", "q_log_uniform")
_ALL_ARGS = ("low", "high", "q", "mu", "sigma")


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
    """Choose among these values: all of them in a grid, one per trial otherwise."""

    spec_label: ClassVar[str] = "values parameter"

    values: list[JsonValue] = Field(min_length=1, max_length=10_000)

    @field_validator("values")
    @classmethod
    def _storable(cls, values: list[JsonValue]) -> list[JsonValue]:
        _check_json(values)
        return values


class ConstantParam(StrictModel):
    """The same value in every trial."""

    spec_label: ClassVar[str] = "constant parameter"

    value: JsonValue

    @field_validator("value")
    @classmethod
    def _storable(cls, value: JsonValue) -> JsonValue:
        _check_json(value)
        return value


class DistributionParam(StrictModel):
    """A distribution to sample from; which of low/high/q/mu/sigma apply depends on it."""

    spec_label: ClassVar[str] = "distribution parameter"

    distribution: DistributionName
    low: float | None = None
    high: float | None = None
    q: float | None = Field(default=None, gt=0, description="Quantization step.")
    mu: float | None = None
    sigma: float | None = Field(default=None, gt=0)

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
        low, high = self.low, self.high
        if low is None or high is None:
            return self
        if low >= high:
            fail(("low",), f"low ({low}) must be less than high ({high})", low)
        if self.distribution in _LOG_SCALE and low <= 0:
            fail(("low",), f"{self.distribution} needs low > 0 (got {low})", low)
        if self.distribution == "int_uniform" and not (low.is_integer() and high.is_integer()):
            fail(("low",), f"int_uniform needs whole low and high (got {low}, {high})", low)
        return self


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
