"""What the optimizer, schedule and task registries share.

Each registry is one explicit dict from name to a params model (a `RegistryParams`
subclass with `name: Literal[...]`). A field typed with a registry accepts the params
object, or a bare name meaning that entry with its defaults.

Server-side plug-ins add entries through Python entry points (see `plugin_entries`); no
code is ever accepted over HTTP.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel

from services.specs.common import StrictModel, fail, rule_error

__all__ = [
    "RegistryParams",
    "check_registry",
    "describe_registry",
    "plugin_entries",
    "plugin_params",
    "registry_parser",
]

log = logging.getLogger("lrlab.plugins")


class RegistryParams(StrictModel):
    """Base of every registry entry's params; subclasses add `name: Literal[...]`."""

    # "optimizer", "schedule", "task": the registry this entry belongs to.
    spec_kind: ClassVar[str] = "entry"

    # Declared here so that `name` comes first in dumps; each entry narrows it to a Literal.
    name: str

    @classmethod
    def entry_name(cls) -> str:
        return str(cls.model_fields["name"].default)

    @classmethod
    def label(cls) -> str:
        return f"{cls.spec_kind} {cls.entry_name()!r}"


Registry = Mapping[str, type[RegistryParams]]
P = TypeVar("P", bound=RegistryParams)


def check_registry(registry: Registry, union_members: tuple[Any, ...]) -> None:
    """Fail at import if a registry and its typed union drift apart."""
    for name, model in registry.items():
        if model.entry_name() != name:
            raise RuntimeError(f"registry key {name!r} holds {model.__name__} ({model.label()})")
    if set(registry.values()) != set(union_members):
        raise RuntimeError(f"registry {sorted(registry)} and its union differ")


def plugin_entries(group: str) -> Iterator[tuple[str, object]]:
    """(name, loaded object) of each entry point in `group`, in a stable order.

    A plug-in that fails to import is logged and skipped: one broken package must not
    keep the server (or a worker) from starting.
    """
    for ep in sorted(entry_points(group=group), key=lambda ep: (ep.name, ep.value)):
        try:
            obj = ep.load()
        except Exception as exc:
            log.warning("skipping %s plug-in %r (%s): %r", group, ep.name, ep.value, exc)
            continue
        yield ep.name, obj


def plugin_params(group: str, base: type[P], registry: Mapping[str, type[P]]) -> dict[str, type[P]]:
    """The params models that the plug-ins of `group` add to `registry` (left as it is).

    Each must be a `base` subclass declaring `name: Literal["<entry point name>"]` with that
    default, under a name not already in `registry` nor taken by an earlier plug-in;
    anything else is logged and skipped.
    """
    added: dict[str, type[P]] = {}
    for name, obj in plugin_entries(group):
        if not (isinstance(obj, type) and issubclass(obj, base)):
            problem = f"{obj!r} is not a {base.__name__} subclass"
        elif name in registry or name in added:
            problem = f"the name {name!r} is already taken"
        elif not _named(obj, name):
            problem = f'{obj.__name__} must declare name: Literal["{name}"] = "{name}"'
        else:
            added[name] = obj
            continue
        log.warning("skipping %s plug-in %r: %s", group, name, problem)
    return added


def _named(model: type[RegistryParams], name: str) -> bool:
    """Whether `model` is chosen by `name` (what the discriminated union dispatches on)."""
    field = model.model_fields.get("name")
    return (
        field is not None
        and get_origin(field.annotation) is Literal
        and get_args(field.annotation) == (name,)
        and field.default == name
    )


def registry_parser(kind: str, registry: Registry) -> Callable[[Any], Any]:
    """A before-validator: dispatch on `name` with our own messages for bad names.

    The discriminated union would reject an unknown tag too, but then the error loc
    carries the tag ('optimizer.adam.lr'); dispatching here keeps it 'optimizer.lr'.
    """
    valid = ", ".join(sorted(registry))

    def parse(value: Any) -> Any:
        if isinstance(value, BaseModel):
            if type(value) in registry.values():
                return value
            raise rule_error(f"{kind} must be one of: {valid} (got {type(value).__name__})")
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise rule_error(
                f"{kind} must be a name or an object with a 'name' key; valid names: {valid}"
            )
        if "name" not in value:
            fail(("name",), f"{kind} needs a 'name'; valid names: {valid}", kind="missing")
        name = value["name"]
        model = registry.get(name) if isinstance(name, str) else None
        if model is None:
            fail(("name",), f"unknown {kind} {name!r}; valid names: {valid}", name, "unknown_name")
        return model.model_validate(value)

    return parse


def describe_registry(registry: Registry) -> list[dict[str, Any]]:
    """One entry per name: its description (the docstring) and its params' JSON schema."""
    out = []
    for name, model in registry.items():
        schema = model.model_json_schema()
        # `name` is the key the entry is chosen by, not a parameter of it.
        schema.get("properties", {}).pop("name", None)
        required = [key for key in schema.pop("required", []) if key != "name"]
        if required:
            schema["required"] = required
        schema.pop("title", None)
        schema.pop("description", None)
        out.append(
            {
                "name": name,
                "description": inspect.cleandoc(model.__doc__ or ""),
                "params": schema,
            }
        )
    return out
