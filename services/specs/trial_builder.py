"""Building a sweep's trial: the base with each param set at its dotted path.

Grid trials (at submission), lazily asked trials (random, bayes) and the checks of a
space at submission all build trials here, the same way:

- the base's registry entries (task, optimizer, schedule) start from the keys the user set
  explicitly, so that a param that switches an entry (`optimizer.name`: sgd -> adagrad)
  gives the new entry its own defaults, not the old entry's (torch's lr default differs
  between them). A sweep is stored with its base's entries in that form
  (`sweep_document`), so a trial asked for a week later is built as one built now;
- where the sweep chooses an entry (sweeps it whole or its name), a key the chosen entry
  does not have is left out: the base's sgd momentum does not follow a switch to adam, and
  a swept `optimizer.momentum` applies to the trials whose optimizer has one. The keys of
  an entry given whole as a value stay, so a wrong one there is the user's error to see.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import JsonValue

from services.specs.optimizers import OPTIMIZERS
from services.specs.params import ConstantParam, ValuesParam
from services.specs.registry import RegistryParams
from services.specs.schedules import SCHEDULES
from services.specs.sweep import SweepSpec
from services.specs.tasks import TASKS
from services.specs.trial import REGISTRY_FIELDS, TrialSpec

__all__ = ["REGISTRIES", "apply_params", "chooses_entry", "entry_names", "sweep_document"]

REGISTRIES: dict[str, Mapping[str, type[RegistryParams]]] = {
    "task": TASKS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
}


def _set_entry(entry: RegistryParams, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
    """The entry's name and the keys set explicitly."""
    return {"name": entry.name, **entry.model_dump(mode=mode, exclude_unset=True)}


def _base_dump(base: TrialSpec) -> dict[str, Any]:
    data = base.model_dump()
    for field in REGISTRY_FIELDS:
        data[field] = _set_entry(getattr(base, field))
    return data


def _item_default(field: str, node: dict[str, Any], key: str) -> Any:
    """The default of `key` in the registry entry `node` of `field` (an unset betas)."""
    model = REGISTRIES[field].get(str(node.get("name"))) if field in REGISTRIES else None
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


def chooses_entry(field: str, paths: Mapping[str, Any] | set[str]) -> bool:
    """Whether params at `paths` choose the registry entry of `field` (whole or by name)."""
    return field in paths or f"{field}.name" in paths


def _fit_entries(data: dict[str, Any], params: Mapping[str, Any]) -> None:
    for field in REGISTRY_FIELDS:
        node = data.get(field)
        name = node.get("name") if isinstance(node, dict) else None
        if not chooses_entry(field, params) or not isinstance(name, str):
            continue
        model = REGISTRIES[field].get(name)
        if model is None:
            continue  # validation names the unknown entry
        whole = params.get(field)
        given = set(whole) if isinstance(whole, dict) else set()
        assert isinstance(node, dict)
        for key in [k for k in node if k not in model.model_fields and k not in given]:
            del node[key]


def apply_params(base: TrialSpec, params: Mapping[str, Any]) -> TrialSpec:
    """`base` with each value set at its dotted path; raises ValidationError if invalid.

    Shorter paths are set first, so {"optimizer.lr": ..., "optimizer": ...} sets the whole
    optimizer and then its lr, whatever the order of the keys.
    """
    data = _base_dump(base)
    for path in sorted(params, key=lambda p: p.count(".")):
        _set_path(data, path, params[path])
    _fit_entries(data, params)
    return TrialSpec.model_validate(data)


def _choice_names(choices: list[JsonValue]) -> list[str]:
    names = []
    for choice in choices:
        name = choice.get("name") if isinstance(choice, dict) else choice
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def entry_names(spec: SweepSpec, field: str) -> list[str]:
    """The names of the `field` entries the sweep's trials can have, in the space's order
    (a deeper `field.name` wins over a whole entry's own name, as in `apply_params`)."""
    for path in (f"{field}.name", field):
        param = spec.space.get(path)
        if isinstance(param, ValuesParam):
            return _choice_names(list(param.values))
        if isinstance(param, ConstantParam):
            return _choice_names([param.value])
    return [getattr(spec.base, field).name]


def sweep_document(spec: SweepSpec) -> dict[str, Any]:
    """The JSON document a sweep is stored as: the spec, with the base's registry entries
    holding only what the user set, so that trials built from the stored spec later are
    built as they would be now (see the module docstring)."""
    document = spec.model_dump(mode="json")
    for field in REGISTRY_FIELDS:
        document["base"][field] = _set_entry(getattr(spec.base, field), "json")
    return document
