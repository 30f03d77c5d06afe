"""Checking a sweep's space at submission: every trial it can make must build.

A grid is checked by building every combination (`grid.expand_grid`). A sampled space
(random, bayes, or an lr still to come from a range test) is checked here, with the
builder trials use (`trial_builder.apply_params`):

- every combination of its values (sub-specs, schedule kinds, ...) is built, with each
  distribution at its middle;
- then each distribution at each end of its support, with the other distributions at
  their middles, in every combination: so a support that leaves the field's bounds (an lr
  reaching 0, a momentum reaching 1.5, a q that rounds to 0, fractions for an integer
  field) is refused before any trial is drawn.

A distribution's ends are what its draws reach: low and high (after q's rounding); beta's
open (0, 1); a normal's mu +/- 4 sigma (a draw beyond it: 6 in 100,000). A W&B file's
momentum ~ normal(0.9, 0.02) passes: its 5-sigma draw would be the first to reach 1.
When the combinations times the ends are more than `MAX_BUILDS` trials, each value
is built once (not in every combination) and a warning says so.

An `lr: auto` still to come is checked over its range test's whole ramp, which its bounds
lie within but rarely fill: a problem at the ramp's ends is a warning (the sweep is
cancelled, with the reason, if the bounds the test gives make invalid trials).

Keys that a sweep sets under a registry entry it also chooses (`optimizer.momentum` while
`optimizer.name` is sgd or adam) apply to the entries that have them; `entry_keys` warns
where a key applies to some of them and refuses one that applies to none.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import JsonValue, ValidationError

from services.specs.common import Loc, Problem, field_path, spec_errors
from services.specs.params import (
    ConstantParam,
    DistributionParam,
    ParamSpec,
    ValuesParam,
    quantize,
    unquantized,
)
from services.specs.range_test import AUTO_PATH
from services.specs.sweep import SweepSpec
from services.specs.trial import REGISTRY_FIELDS
from services.specs.trial_builder import REGISTRIES, apply_params, chooses_entry, entry_names

__all__ = ["MAX_BUILDS", "entry_keys", "sampled_space"]

# Trials built to check one sampled space: about a second of CPU at worst.
MAX_BUILDS = 4000
# How far out a normal's draws are checked, in sigmas.
NORMAL_REACH = 4.0


def _space_loc(path: str) -> Loc:
    return ("space", path)


def _shown(path: str) -> str:
    return field_path(_space_loc(path))


# -- keys under an entry the sweep chooses ----------------------------------------------------


def entry_keys(spec: SweepSpec, warnings: list[str]) -> list[Problem]:
    """Keys swept under a chosen registry entry: a problem where no chosen entry has the
    key, a warning where only some do (the others' trials run without it)."""
    problems = []
    for path in spec.space:
        field, _, key = path.partition(".")
        if field not in REGISTRY_FIELDS or not key or "." in key or key == "name":
            continue
        if not chooses_entry(field, set(spec.space)):
            continue  # the base's entry decides, and check_path has checked the key
        registry = REGISTRIES[field]
        names = [n for n in entry_names(spec, field) if n in registry]
        having = [n for n in names if key in registry[n].model_fields]
        if names and not having:
            problems.append(
                Problem(
                    _space_loc(path),
                    f"none of the {field}s this sweep picks ({', '.join(names)}) has {key!r}",
                )
            )
        elif len(having) < len(names):
            without = ", ".join(n for n in names if n not in having)
            some = (
                f"{field} {having[0]} has"
                if len(having) == 1
                else f"{field}s {', '.join(having)} have"
            )
            warnings.append(
                f"{_shown(path)}: only {some} {key}; the trials with {without} run without it"
            )
    return problems


# -- a sampled space --------------------------------------------------------------------------


def _typed(param: DistributionParam, value: float) -> JsonValue:
    """`value` as a draw of `param` would be: rounded by q, an int where draws are."""
    if param.q is not None:
        return quantize(value, param.q)
    if param.distribution == "int_uniform":
        return int(value)
    return float(value)


def _bounds(param: DistributionParam) -> tuple[float, float, float]:
    """(lowest, middle, highest) of the unrounded draws."""
    name = unquantized(param.distribution)
    if name in ("normal", "log_normal"):
        mu, sigma = param.mu or 0.0, param.sigma or 0.0
        low, high = mu - NORMAL_REACH * sigma, mu + NORMAL_REACH * sigma
        if name == "log_normal":
            return math.exp(low), math.exp(mu), math.exp(high)
        return low, mu, high
    if name == "beta":
        a, b = param.a or 1.0, param.b or 1.0
        return math.nextafter(0.0, 1.0), a / (a + b), math.nextafter(1.0, 0.0)
    low, high = param.low or 0.0, param.high or 0.0
    if name in ("log_uniform", "inv_log_uniform"):
        return low, math.sqrt(low) * math.sqrt(high), high
    if name == "int_uniform":
        return low, float((int(low) + int(high)) // 2), high
    return low, low / 2 + high / 2, high


def _describe(param: DistributionParam) -> str:
    name = param.distribution
    if unquantized(name) in ("normal", "log_normal"):
        shape = f"{name}(mu={param.mu:g}, sigma={param.sigma:g}) out to {NORMAL_REACH:g} sigma"
    elif unquantized(name) == "beta":
        shape = f"{name}(a={param.a:g}, b={param.b:g})"
    else:
        shape = f"{name} from {param.low:g} to {param.high:g}"
    return shape if param.q is None else f"{shape}, rounded to multiples of {param.q:g}"


@dataclass(frozen=True)
class _Space:
    """A sampled space split into its values (enumerated) and distributions (probed)."""

    choices: dict[str, list[JsonValue]]
    distributions: dict[str, DistributionParam]
    auto_lr: bool  # the lr's distribution stands for a range test's bounds still to come

    @classmethod
    def of(cls, spec: SweepSpec) -> _Space:
        space: dict[str, ParamSpec] = dict(spec.space)
        auto = spec.lr_auto
        auto_lr = auto is not None and auto.resolution is None
        if auto is not None and auto_lr:
            # The range test's bounds lie within its ramp: check the lr over all of it.
            ramp = auto.range_test
            space[AUTO_PATH] = DistributionParam(
                distribution="log_uniform", low=ramp.min_lr, high=ramp.max_lr
            )
        choices: dict[str, list[JsonValue]] = {}
        distributions = {}
        for path, param in space.items():
            if isinstance(param, ValuesParam):
                choices[path] = list(param.values)
            elif isinstance(param, ConstantParam):
                choices[path] = [param.value]
            else:
                distributions[path] = param
        return cls(choices, distributions, auto_lr)

    def _structural(self) -> list[str]:
        """Paths whose values change a trial's shape: a registry entry, or a sub-spec."""
        return [
            path
            for path, values in self.choices.items()
            if path in REGISTRY_FIELDS
            or (path.endswith(".name") and path.partition(".")[0] in REGISTRY_FIELDS)
            or any(isinstance(value, dict) for value in values)
        ]

    def combinations(
        self, per_combination: int, warnings: list[str]
    ) -> tuple[Iterator[dict[str, JsonValue]], bool]:
        """The combinations of values to build, and whether to probe the distributions'
        ends with each (else with the first only).

        Every combination if they are few enough; else every combination of the
        structural values, each with each other value once; else each value once."""
        total = math.prod(len(values) for values in self.choices.values())
        if total * per_combination <= MAX_BUILDS:
            return _product(self.choices), True
        structural = self._structural()
        others = {p: v for p, v in self.choices.items() if p not in structural}
        singles = 1 + sum(len(values) - 1 for values in others.values())
        shapes = math.prod(len(self.choices[p]) for p in structural)
        if structural and shapes * singles * per_combination <= MAX_BUILDS:
            kept = f"every combination of {', '.join(structural)}, each with each other value"
            shaped = _product({p: self.choices[p] for p in structural})
            probe_each = True
        else:
            kept, shaped, others, probe_each = "each value", iter([{}]), self.choices, False
        warnings.append(
            f"space: its values make {total} combinations, too many to build each; lrlab "
            f"built {kept} once (the other parameters at their first value)"
        )
        return _one_at_a_time(shaped, others), probe_each


def _one_at_a_time(
    shapes: Iterator[dict[str, JsonValue]], others: dict[str, list[JsonValue]]
) -> Iterator[dict[str, JsonValue]]:
    """Each shape with the first of the other values, then with each other value alone."""
    first = {path: values[0] for path, values in others.items()}
    for shape in shapes:
        yield {**shape, **first}
        for path, values in others.items():
            for value in values[1:]:
                yield {**shape, **first, path: value}


def _product(choices: dict[str, list[JsonValue]]) -> Iterator[dict[str, JsonValue]]:
    paths = list(choices)
    for values in itertools.product(*(choices[p] for p in paths)):
        yield dict(zip(paths, values, strict=True))


def _blamed(field: str, paths: list[str], varied: str | None) -> str | None:
    """The swept path an error at trial field `field` is laid at."""
    above = [p for p in paths if field == p or field.startswith((f"{p}.", f"{p}["))]
    if above:
        return max(above, key=len)
    if varied is not None:
        return varied
    top = field.split(".")[0].split("[")[0]
    under = [p for p in paths if p.split(".")[0] == top]
    return under[0] if under else None


def _shown_values(values: dict[str, JsonValue]) -> str:
    return ", ".join(f"{path}={value!r}" for path, value in values.items())


def _number(value: JsonValue) -> str:
    # 36.0 stays 36.0 (a float where an integer is meant is the point), 1.2000000000000002
    # reads 1.2.
    if isinstance(value, float) and len(repr(value)) > 12:
        return f"{value:.6g}"
    return repr(value)


class _Checker:
    def __init__(self, spec: SweepSpec, space: _Space) -> None:
        self.spec = spec
        self.space = space
        self.paths = [*space.choices, *space.distributions]
        self.problems: dict[Loc, Problem] = {}
        # What may break at a distribution's end without refusing the sweep: said instead.
        self.soft = {AUTO_PATH} if space.auto_lr else set()
        self.doubts: dict[Loc, str] = {}

    def _context(self, path: str | None, params: dict[str, JsonValue], shown: str) -> str:
        """What made the trial: the distribution's value that broke it, or the values."""
        param = self.space.distributions.get(path or "")
        if param is None:
            return f"with {shown} the trial is invalid" if shown else "the trial is invalid"
        assert path is not None
        reach = f"{_describe(param)} reaches {_number(params[path])}"
        return f"{reach} (with {shown})" if shown else reach

    def build(self, params: dict[str, JsonValue], shown: str, varied: str | None) -> bool:
        """Build one trial; record its problems and say whether it built."""
        try:
            apply_params(self.spec.base, params)
        except ValidationError as exc:
            for error in spec_errors(exc):
                path = _blamed(error.field, self.paths, varied)
                loc = _space_loc(path) if path is not None else ("space",)
                if loc in self.problems:
                    continue
                message = f"{self._context(path, params, shown)}: {error}"
                if isinstance(params.get(path or ""), float) and "integer" in error.message:
                    message += "; int_uniform, or an integer q, draws integers"
                if varied in self.soft and path == varied:
                    self.doubts.setdefault(loc, f"{field_path(loc)}: {message}")
                else:
                    self.problems[loc] = Problem(loc, message)
            return False
        return True

    def run(self, warnings: list[str]) -> list[Problem]:
        middles: dict[str, JsonValue] = {}
        ends: dict[str, list[JsonValue]] = {}
        for path, param in self.space.distributions.items():
            low, middle, high = _bounds(param)
            try:
                middles[path] = _typed(param, middle)
                ends[path] = list(dict.fromkeys([_typed(param, low), _typed(param, high)]))
            except OverflowError:  # the sampler could not round its draws either
                message = f"{_describe(param)}: its values over q are too large to round"
                self.problems[_space_loc(path)] = Problem(_space_loc(path), message)
        if self.problems:
            return list(self.problems.values())
        per_combination = 1 + sum(len(values) for values in ends.values())
        combinations, probe_each = self.space.combinations(per_combination, warnings)
        builds = 0
        for index, combination in enumerate(combinations):
            if builds >= MAX_BUILDS:
                warnings.append(
                    f"space: lrlab stopped after building {builds} of its trials; a value "
                    "after those that makes an invalid trial fails the trials that draw it"
                )
                break
            shown = _shown_values(combination)
            builds += 1
            if not self.build({**combination, **middles}, shown, None):
                continue  # broken in the middle: its ends would say the same again
            if not (probe_each or index == 0):
                continue
            for path, values in ends.items():
                for value in values:
                    builds += 1
                    self.build({**combination, **middles, path: value}, shown, path)
        warnings.extend(
            f"{doubt}; if the range test's bounds reach it, the sweep is cancelled"
            for loc, doubt in self.doubts.items()
            if loc not in self.problems
        )
        return list(self.problems.values())


def sampled_space(spec: SweepSpec, warnings: list[str]) -> list[Problem]:
    """The problems of a sampled space (see the module docstring); none for a grid or a
    single trial, whose every trial is built when they are expanded."""
    auto_pending = spec.lr_auto is not None and spec.lr_auto.resolution is None
    if spec.method not in ("random", "bayes") and not auto_pending:
        return []
    return _Checker(spec, _Space.of(spec)).run(warnings)
