"""One W&B sweep parameter -> a native search-space entry (see `services.specs.wandb`).

W&B's rules, as documented: a parameter with `values` is categorical (weighted by
`probabilities` when given: honoured by method random; grid and bayes ignore them, with a
warning), with `value` a constant, with only `min` and `max` int_uniform when both are
integers and uniform otherwise; `distribution` names any of the others. Defaults: q 1,
mu 0, sigma 1, a 1, b 1.
`log_uniform`, `q_log_uniform` and `inv_log_uniform` take natural-log exponents
(log_uniform min -9.2, max -2.3 is about 1e-4..1e-1); their `_values` forms take values.
Method grid enumerates values and constants, int_uniform (min..max) and q_uniform (min,
min + q, ... below max), as W&B's grid does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from services.specs.common import field_path, rule_error
from services.specs.params import (
    ConstantParam,
    DistributionParam,
    ValuesParam,
)

__all__ = ["WANDB_DISTRIBUTIONS", "Loc", "Problems", "WandbParam", "wandb_param"]

Loc = tuple[int | str, ...]
WandbParam = ValuesParam | ConstantParam | DistributionParam

# W&B distribution -> (its keys besides `distribution`, the native distribution).
WANDB_DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "constant": (("value",), ""),
    "categorical": (("values", "probabilities"), ""),
    "categorical_w_probabilities": (("values", "probabilities"), ""),
    "int_uniform": (("min", "max"), "int_uniform"),
    "uniform": (("min", "max"), "uniform"),
    "q_uniform": (("min", "max", "q"), "q_uniform"),
    "log_uniform": (("min", "max"), "log_uniform"),
    "log_uniform_values": (("min", "max"), "log_uniform"),
    "q_log_uniform": (("min", "max", "q"), "q_log_uniform"),
    "q_log_uniform_values": (("min", "max", "q"), "q_log_uniform"),
    "inv_log_uniform": (("min", "max"), "inv_log_uniform"),
    "inv_log_uniform_values": (("min", "max"), "inv_log_uniform"),
    "normal": (("mu", "sigma"), "normal"),
    "q_normal": (("mu", "sigma", "q"), "q_normal"),
    "log_normal": (("mu", "sigma"), "log_normal"),
    "q_log_normal": (("mu", "sigma", "q"), "q_log_normal"),
    "beta": (("a", "b"), "beta"),
    "q_beta": (("a", "b", "q"), "q_beta"),
}
_DEFAULTS: dict[str, int] = {"q": 1, "mu": 0, "sigma": 1, "a": 1, "b": 1}
_EXPONENTS = ("log_uniform", "q_log_uniform", "inv_log_uniform")
# exp() of an exponent beyond this overflows (or underflows to 0).
_MAX_EXPONENT = 700
_GRID_MAX = 10_000  # a values parameter's limit
_NATIVE_KEYS = {"low": "min", "high": "max"}
_CATEGORICAL = ("categorical", "categorical_w_probabilities")


@dataclass
class Problems:
    """The errors found in a W&B file, each at its path in the file, and its warnings: what
    the file asks for that lrlab accepts but does not do, each a sentence naming the key."""

    items: list[InitErrorDetails] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, loc: Loc, message: str) -> None:
        self.warnings.append(f"{field_path(loc)}: {message}")

    def add(self, loc: Loc, message: str, value: Any = None) -> None:
        self.items.append(
            InitErrorDetails(type=rule_error(message, "wandb_rule"), loc=loc, input=value)
        )

    def add_native(self, exc: ValidationError, rename: dict[str, str], at: Loc = ()) -> None:
        """Errors of a native model, moved to `at` and renamed into the file's words."""
        words = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b") if rename else None
        for error in exc.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            if words is not None:
                message = words.sub(lambda m: rename[m.group(1)], message)
            loc = tuple(rename.get(p, p) if isinstance(p, str) else p for p in error["loc"])
            self.add((*at, *loc), message, error.get("input"))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError.from_exception_data("W&B sweep file", self.items)


class _Invalid(Exception):
    """This parameter has problems (already recorded); skip it."""


def _problem(problems: Problems, loc: Loc, message: str, value: Any = None) -> NoReturn:
    problems.add(loc, message, value)
    raise _Invalid


def _number(problems: Problems, node: dict[str, Any], key: str, loc: Loc) -> int | float:
    value = node.get(key, _DEFAULTS.get(key))
    if value is None:
        _problem(problems, (*loc, key), f"{key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _problem(problems, (*loc, key), f"{key} must be a finite number (got {value!r})", value)
    return value


def _kind(problems: Problems, node: dict[str, Any], loc: Loc) -> str:
    """The W&B distribution of `node`, given or inferred as W&B does."""
    given = node.get("distribution")
    if given is not None:
        if not isinstance(given, str) or given not in WANDB_DISTRIBUTIONS:
            valid = ", ".join(WANDB_DISTRIBUTIONS)
            _problem(
                problems,
                (*loc, "distribution"),
                f"unknown distribution {given!r}; W&B's distributions: {valid}",
                given,
            )
        return given
    if "values" in node:
        return "categorical"
    if "value" in node:
        return "constant"
    if "min" in node and "max" in node:
        ints = all(type(node[k]) is int for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    _problem(
        problems,
        loc,
        "cannot tell the distribution: give values, value, min and max, or a distribution",
    )


def _native(
    kind: str, args: dict[str, int | float], problems: Problems, loc: Loc
) -> dict[str, Any]:
    """The native distribution's arguments; exponents become values."""
    native = WANDB_DISTRIBUTIONS[kind][1]
    out: dict[str, Any] = {"distribution": native}
    if "min" not in args:
        return {**out, **args}
    low, high = args["min"], args["max"]
    if kind in _EXPONENTS:
        for key in ("min", "max"):
            if abs(args[key]) > _MAX_EXPONENT:
                _problem(
                    problems,
                    (*loc, key),
                    f"{kind} takes natural-log exponents, and exp({args[key]:g}) is out of "
                    f"range (|{key}| <= {_MAX_EXPONENT}); for bounds that are values use "
                    f"{kind}_values",
                    args[key],
                )
        if low >= high:
            _problem(problems, (*loc, "min"), f"min ({low}) must be less than max ({high})", low)
        exponents = (low, high)
        # inv_log_uniform: log(1/X) in [min, max], so X in [exp(-max), exp(-min)].
        if native == "inv_log_uniform":
            low, high = math.exp(-high), math.exp(-low)
        else:
            low, high = math.exp(low), math.exp(high)
        if exponents[0] >= 0 and exponents[1] <= 1:  # values such as 0.0001 and 0.1, likely
            problems.warn(
                loc,
                f"{kind} takes natural-log exponents: min {exponents[0]:g} and max "
                f"{exponents[1]:g} give values from {low:.4g} to {high:.4g}; for bounds "
                f"that are values use {kind}_values",
            )
    extra = {k: v for k, v in args.items() if k not in ("min", "max")}
    return {**out, "low": low, "high": high, **extra}


def _grid_values(param: DistributionParam, kind: str, problems: Problems, loc: Loc) -> list[Any]:
    low, high, q = param.low or 0.0, param.high or 0.0, param.q
    if kind == "int_uniform":
        count: float = high - low + 1
    elif kind == "q_uniform" and q is not None:
        count = math.ceil(span) if math.isfinite(span := (high - low) / q) else math.inf
    else:
        _problem(
            problems,
            (*loc, "distribution"),
            "method grid enumerates values, value, int_uniform and q_uniform parameters; "
            f"a {kind} distribution can only be sampled (method random or bayes)",
            kind,
        )
    if count > _GRID_MAX:
        size = f"{count:.0f}" if math.isfinite(count) else "too many"
        _problem(
            problems, loc, f"a grid over {kind} here has {size} values; the limit is {_GRID_MAX}"
        )
    if kind == "int_uniform":
        return list(range(int(low), int(high) + 1))
    start: int | float = int(low) if low.is_integer() and isinstance(q, int) else low
    assert q is not None
    return [start + index * q for index in range(int(count))]


def _categorical(
    node: dict[str, Any], kind: str, loc: Loc, method: str, problems: Problems
) -> ValuesParam:
    if kind == "categorical_w_probabilities" and "probabilities" not in node:
        _problem(problems, (*loc, "probabilities"), f"{kind} needs probabilities")
    given = {key: node[key] for key in ("values", "probabilities") if key in node}
    param = ValuesParam.model_validate({"values": None, **given})
    if param.probabilities is None or method == "random":
        return param
    # W&B weighs categorical choices in random search alone; the file stays valid.
    ignores = (
        "enumerates every value"
        if method == "grid"
        else "does not weight its choices (its sampler takes no prior)"
    )
    problems.warn((*loc, "probabilities"), f"method {method} {ignores}; they are ignored")
    return ValuesParam(values=param.values)


def wandb_param(node: Any, loc: Loc, method: str, problems: Problems) -> WandbParam | None:
    """The native form of the W&B parameter `node` (at `loc` in the file), or None with its
    problems recorded."""
    try:
        return _convert(node, loc, method, problems)
    except _Invalid:
        return None


def _convert(node: Any, loc: Loc, method: str, problems: Problems) -> WandbParam:
    if not isinstance(node, dict):
        _problem(
            problems,
            loc,
            "a parameter is a mapping: {values: [...]}, {value: x}, {distribution: ..., "
            f"min: ..., max: ...}}, or {{parameters: {{...}}}} for a group (got {node!r:.80})",
            node,
        )
    kind = _kind(problems, node, loc)
    keys = WANDB_DISTRIBUTIONS[kind][0]
    unknown = [key for key in node if key not in (*keys, "distribution")]
    for key in unknown:
        valid = ", ".join(sorted((*keys, "distribution")))
        problems.add(
            (*loc, key), f"unknown key {key!r} for a {kind} parameter; valid keys: {valid}"
        )
    if unknown:
        raise _Invalid
    try:
        if kind in _CATEGORICAL:
            return _categorical(node, kind, loc, method, problems)
        if kind == "constant":
            return ConstantParam.model_validate({"value": node.get("value")})
        args = {key: _number(problems, node, key, loc) for key in keys}
        param = DistributionParam.model_validate(_native(kind, args, problems, loc))
    except ValidationError as exc:
        native = WANDB_DISTRIBUTIONS[kind][1]
        problems.add_native(exc, {**_NATIVE_KEYS, native: kind} if native else {}, loc)
        raise _Invalid from None
    if method == "grid":
        return ValuesParam(values=_grid_values(param, kind, problems, loc))
    return param
