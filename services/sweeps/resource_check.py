"""Refusing work no node can run: a sweep (or job, or range test) that can make a trial
asking for more CPUs or GPUs than the largest node of a fixed cluster has is a 422 naming
the field, not a trial that waits forever.

Every trial the sweep can make is considered: the base's resources, and what the space
sets at `resources`, `resources.cpus` or `resources.gpus` (each value of a list, the
upper bound of a bounded distribution). With the cluster unknown (no scheduler has seen
it yet) or one that may grow, nothing is refused here: the scheduler marks such trials
waiting, with the reason, when it meets them (services.scheduling.scheduler).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.domain.capacity import ClusterCapacity, amount
from services.domain.errors import InvalidInput
from services.specs import ConstantParam, DistributionParam, Resources, SweepSpec, ValuesParam
from services.specs.params import ParamSpec

__all__ = ["check_resources"]

_DEFAULT = Resources()  # what a `resources` value leaves out


@dataclass(frozen=True)
class _Ask:
    cpus: float
    gpus: float
    cpus_field: str  # where the value came from, to name in the error
    gpus_field: str


def check_resources(
    spec: SweepSpec, capacity: ClusterCapacity | None, base_field: str = "base"
) -> None:
    """Raise InvalidInput when the cluster is fixed, known, and no node holds one of the
    trials `spec` can make. `base_field` is where the base trial spec sits in the request
    ("" for a job, whose body is the trial spec itself)."""
    if capacity is None or capacity.may_grow:
        return
    most_cpus = max((n.cpus for n in capacity.nodes), default=0.0)
    for ask in _asks(spec, base_field):
        why = capacity.shortfall(ask.cpus, ask.gpus)
        if why is None:
            continue
        field = ask.cpus_field if ask.cpus > most_cpus + 1e-4 else ask.gpus_field
        raise InvalidInput(
            f"a trial of this submission would ask for {amount(ask.cpus, 'CPU')} and "
            f"{amount(ask.gpus, 'GPU')}: {why}. The cluster is fixed "
            "(LRLAB_CLUSTER_AUTOSCALING is off), so the trial could never start",
            field=field,
        )


def _asks(spec: SweepSpec, base_field: str) -> Iterator[_Ask]:
    """Every (cpus, gpus) a trial of the sweep can ask for, with where each came from."""
    prefix = f"{base_field}.resources" if base_field else "resources"
    base = spec.base.resources
    wholes = [_Ask(base.cpus, base.gpus, f"{prefix}.cpus", f"{prefix}.gpus")]
    if "resources" in spec.space:  # swept whole: each value replaces the base's
        wholes = [
            _Ask(
                _number(v.get("cpus"), _DEFAULT.cpus),
                _number(v.get("gpus"), _DEFAULT.gpus),
                "space.resources",
                "space.resources",
            )
            for v in _values(spec.space["resources"])
            if isinstance(v, dict)
        ]
    cpus = [(x, "space.resources.cpus") for x in _numbers(spec.space.get("resources.cpus"))]
    gpus = [(x, "space.resources.gpus") for x in _numbers(spec.space.get("resources.gpus"))]
    for whole in wholes:
        for c, c_field in cpus or [(whole.cpus, whole.cpus_field)]:
            for g, g_field in gpus or [(whole.gpus, whole.gpus_field)]:
                yield _Ask(c, g, c_field, g_field)


def _values(param: ParamSpec) -> list[Any]:
    if isinstance(param, ValuesParam):
        return list(param.values)
    if isinstance(param, ConstantParam):
        return [param.value]
    return []


def _numbers(param: ParamSpec | None) -> list[float]:
    """The values a numeric parameter can take that matter here: each listed value, or
    the top of a bounded distribution (an unbounded one, such as normal, says nothing)."""
    if param is None:
        return []
    if isinstance(param, DistributionParam):
        if param.high is not None:
            return [param.high]
        return [1.0] if param.distribution in ("beta", "q_beta") else []
    found = (_number(v, math.nan) for v in _values(param))
    return [n for n in found if not math.isnan(n)]


def _number(value: Any, default: float) -> float:
    """A JSON number as a float; `default` for anything else (the trial's own check
    rejects a value that is no number when the trial is made)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default
