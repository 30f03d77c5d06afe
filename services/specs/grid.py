"""Expanding a grid: every combination of the space's values, each built into a trial
(`trial_builder.apply_params`, the one way trials are built)."""

from __future__ import annotations

import itertools
import math

from pydantic import JsonValue, ValidationError

from services.specs.common import SpecError, describe_error
from services.specs.params import param_choices
from services.specs.sweep import SweepSpec
from services.specs.trial import TrialSpec
from services.specs.trial_builder import apply_params

__all__ = ["expand_grid", "grid_size"]


def grid_size(spec: SweepSpec) -> int:
    """How many combinations the grid of `spec` has (1 for method single)."""
    if spec.method == "single":
        return 1
    return math.prod(len(param_choices(param)) for param in spec.space.values())


def expand_grid(spec: SweepSpec, limit: int) -> list[tuple[dict[str, JsonValue], TrialSpec]]:
    """The trials of a grid (or single) sweep, as (params, trial spec) pairs.

    Order is deterministic: the cartesian product with the first parameter varying
    slowest, values in the order given; max_trials keeps the first ones. The whole grid
    must fit `limit` (even when max_trials cuts it), so a typo cannot queue millions.
    """
    if spec.method == "single":
        return [({}, spec.base)]
    if spec.method != "grid":
        raise SpecError("method", f"method {spec.method!r} samples its trials; it has no grid")
    size = grid_size(spec)
    if size > limit:
        raise SpecError("space", f"grid has {size} combinations; the limit is {limit}")
    paths = list(spec.space)
    choices = [param_choices(spec.space[path]) for path in paths]
    # islice with stop=None takes everything.
    combinations = itertools.islice(itertools.product(*choices), spec.max_trials)
    out = []
    for values in combinations:
        params = dict(zip(paths, values, strict=True))
        try:
            trial = apply_params(spec.base, params)
        except ValidationError as exc:
            raise SpecError(
                "space", f"combination {params} gives an invalid trial: {describe_error(exc)}"
            ) from exc
        out.append((params, trial))
    return out
