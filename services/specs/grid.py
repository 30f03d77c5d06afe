"""Turning a sweep into trial specs: setting params on the base, and expanding a grid."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue, ValidationError

from services.specs.common import SpecError, describe_error
from services.specs.optimizers import OPTIMIZERS
from services.specs.params import param_choices
from services.specs.registry import RegistryParams
from services.specs.schedules import SCHEDULES
from services.specs.sweep import SweepSpec
from services.specs.tasks import TASKS
from services.specs.trial import REGISTRY_FIELDS, TrialSpec

__all__ = ["apply_params", "expand_grid", "grid_size"]

_REGISTRIES: dict[str, Mapping[str, type[RegistryParams]]] = {
    "task": TASKS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
}


def _base_dump(base: TrialSpec) -> dict[str, Any]:
    data = base.model_dump()
    # A registry entry keeps only its name and what was set explicitly, so that changing
    # "optimizer.name" from sgd to adam does not carry sgd's defaults (momentum, ...) into
    # adam, where they are unknown keys; unset params take the new entry's defaults.
    for field in REGISTRY_FIELDS:
        entry = getattr(base, field)
        assert isinstance(entry, RegistryParams)
        data[field] = {"name": entry.name, **entry.model_dump(exclude_unset=True)}
    return data


def _item_default(field: str, node: dict[str, Any], key: str) -> Any:
    """The default of `key` in the registry entry `node` of `field` (an unset betas)."""
    model = _REGISTRIES[field].get(str(node.get("name"))) if field in _REGISTRIES else None
    if model is None or key not in model.model_fields:
        return None
    return model.model_fields[key].default


def _set_item(data: dict[str, Any], parents: list[str], key: str, index: int, value: Any) -> None:
    """Set item `index` of the tuple `key` under `parents`, keeping its other items (the
    node's, else the entry's default): `optimizer.betas.0` changes beta1 alone."""
    node = data
    for part in parents:
        child = node.get(part)
        child = {"name": child} if isinstance(child, str) else child
        if not isinstance(child, dict):
            return  # validation names what is wrong with the path
        node[part] = node = child
    items = node.get(key)
    if items is None and len(parents) == 1:
        items = _item_default(parents[0], node, key)
    if isinstance(items, list | tuple) and index < len(items):
        node[key] = [*items[:index], copy.deepcopy(value), *items[index + 1 :]]
    else:  # no such tuple here (sgd has no betas): the trial's validation says so
        node[key] = copy.deepcopy(value)


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    if len(parents) > 1 and leaf.isdigit():  # an item of a tuple: optimizer.betas.0
        _set_item(data, parents[:-1], parents[-1], int(leaf), value)
        return
    node = data
    for part in parents:
        child = node.get(part)
        if isinstance(child, str):
            child = {"name": child}  # a bare registry name set by a shorter path
        elif not isinstance(child, dict):
            child = {}  # e.g. regularization.swa while swa is still null
        node[part] = child
        node = child
    node[leaf] = copy.deepcopy(value)


def _drop_old_defaults(base: TrialSpec, data: dict[str, Any], params: Mapping[str, Any]) -> None:
    """Where a param switched a registry entry (sgd -> adam), drop the old entry's keys that
    the new one does not know and that still hold the old entry's default.

    A stored spec has every default written out, so once decoded every key counts as set:
    without this, sgd's momentum=0.0 would follow a switch to adam as an unknown key. A key
    the sweep set to a value of its own still fails validation, as it should."""
    for field in REGISTRY_FIELDS:
        entry, node = getattr(base, field), data.get(field)
        if not isinstance(node, dict) or node.get("name") == entry.name:
            continue
        new_model = _REGISTRIES[field].get(str(node.get("name")))
        known = set(new_model.model_fields) if new_model is not None else set()
        defaults = type(entry).model_fields
        for key in [k for k in node if k not in known and k in defaults]:
            explicit = f"{field}.{key}" in params
            if not explicit and node[key] == defaults[key].default:
                del node[key]


def apply_params(base: TrialSpec, params: Mapping[str, Any]) -> TrialSpec:
    """`base` with each value set at its dotted path; raises ValidationError if invalid.

    Shorter paths are set first, so {"optimizer.lr": ..., "optimizer": ...} sets the whole
    optimizer and then its lr, whatever the order of the keys.
    """
    data = _base_dump(base)
    for path in sorted(params, key=lambda p: p.count(".")):
        _set_path(data, path, params[path])
    _drop_old_defaults(base, data, params)
    return TrialSpec.model_validate(data)


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
