"""Schedule and optimizer names in a W&B file's values, read as lrlab's entries.

`scheduler: {values: [StepLR, OneCycleLR, cosine_with_restarts]}` reads each name through
`entry_names` (torch's class names, Hugging Face's names, common spellings); a name that
implies fields (`constant_with_warmup`: a warmup over 10% of the budget) turns the
parameter's values into whole entries (`schedule` instead of `schedule.name`). A name
lrlab cannot read is an error at its place in the file that lists the names it can.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import JsonValue

from services.specs.entry_names import (
    OPTIMIZER_ALIASES,
    SCHEDULE_ALIASES,
    optimizer_entry,
    schedule_entry,
)
from services.specs.optimizers import OPTIMIZERS
from services.specs.params import ConstantParam, ValuesParam
from services.specs.schedules import SCHEDULES
from services.specs.wandb_params import Loc, Problems, WandbParam

__all__ = ["ENTRY_FIELDS", "read_entries"]

Reader = Callable[[str], dict[str, Any] | None]
# registry field -> (how its names are read, what a message calls it, the names it reads)
ENTRY_FIELDS: dict[str, tuple[Reader, str, list[str]]] = {
    "schedule": (schedule_entry, "scheduler", [*SCHEDULES, *SCHEDULE_ALIASES]),
    "optimizer": (optimizer_entry, "optimizer", [*OPTIMIZERS, *OPTIMIZER_ALIASES]),
}


def _entry(value: JsonValue, field: str, at: Loc, problems: Problems, drop: set[str]) -> JsonValue:
    """`value` (a name, or an object with a name) as an entry; the value itself when it
    has no name to read (native validation then says what is wrong with it)."""
    read, noun, names = ENTRY_FIELDS[field]
    name = value.get("name") if isinstance(value, dict) else value
    if not isinstance(name, str):
        return value
    entry = read(name)
    if entry is None:
        message = (
            f"unknown {noun} {name!r}; lrlab reads {', '.join(names)} (in any case, with "
            "or without _ and -)"
        )
        problems.add(at, message, name)
        return value
    entry = {key: item for key, item in entry.items() if key not in drop}
    if isinstance(value, dict):  # the file's own fields win over those the name implies
        entry.update({key: item for key, item in value.items() if key != "name"})
    return entry


def read_entries(
    path: str, param: WandbParam, loc: Loc, problems: Problems, drop: set[str]
) -> tuple[str, WandbParam]:
    """The path and param of a parameter at `path` once its schedule or optimizer names
    are read (`drop`: fields the sweep sets by parameters of their own, such as the
    warmup, which a name's implied fields then leave alone)."""
    field = path.removesuffix(".name")
    if field not in ENTRY_FIELDS or not isinstance(param, ValuesParam | ConstantParam):
        return path, param
    if isinstance(param, ValuesParam):
        entries = [
            _entry(v, field, (*loc, "values", i), problems, drop)
            for i, v in enumerate(param.values)
        ]
    else:
        entries = [_entry(param.value, field, (*loc, "value"), problems, drop)]
    # Names alone stay names (trials show `schedule.name: step`); implied fields need
    # whole entries.
    bare = all(isinstance(e, dict) and set(e) == {"name"} for e in entries)
    if bare and path.endswith(".name"):
        entries = [e["name"] if isinstance(e, dict) else e for e in entries]
    else:
        path = field
    if isinstance(param, ValuesParam):
        return path, ValuesParam(values=entries, probabilities=param.probabilities)
    return path, ConstantParam(value=entries[0])
