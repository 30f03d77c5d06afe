"""Reading a YAML spec document (a request body, a sweep file) as plain JSON-like data.

YAML can say more than JSON: dates, sets, binary, non-string keys, and anchors whose
aliases share a node (a few lines can expand to billions of values, or refer to
themselves). `load_yaml` keeps what JSON can say and refuses the rest with the path of
the offending node, and bounds depth and expanded size. Floats follow YAML 1.2, so `1e-5`
is a number (YAML 1.1 reads it as a string, a common surprise in lr bounds).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import JsonValue

from services.specs.common import SpecError, field_path

__all__ = ["MAX_DEPTH", "MAX_VALUES", "load_yaml"]

MAX_DEPTH = 64
MAX_VALUES = 200_000

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader plus YAML 1.2 floats without a dot (1e-5, 3E+2)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(raw: bytes | str) -> JsonValue:
    """The document in `raw` as JSON-like data; SpecError (with the field, if any) if not."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"{exc.reason} at byte {exc.start}"
            raise SpecError("", f"the document is not UTF-8 text ({reason})") from None
    try:
        data = yaml.load(raw, Loader=_Loader)  # a SafeLoader: no Python objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = exc.problem or exc.context or "not YAML"
        raise SpecError("", f"invalid YAML{where}: {reason}") from None
    except yaml.YAMLError as exc:
        raise SpecError("", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SpecError("", "invalid YAML: nested too deeply") from None
    return _Plain().convert(data, ())


class _Plain:
    """Converts loaded YAML to JSON types, counting every value it visits (aliases too)."""

    def __init__(self) -> None:
        self.visited = 0

    def convert(self, value: Any, loc: tuple[int | str, ...]) -> JsonValue:
        self.visited += 1
        if self.visited > MAX_VALUES:
            raise SpecError("", f"the document expands to more than {MAX_VALUES} values")
        if len(loc) > MAX_DEPTH:
            raise SpecError(field_path(loc), f"nested more than {MAX_DEPTH} levels deep")
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.convert(item, (*loc, index)) for index, item in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, JsonValue] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError(
                        field_path(loc),
                        f"keys must be strings; quote {key!r} (YAML reads it as "
                        f"{type(key).__name__})",
                    )
                out[key] = self.convert(item, (*loc, key))
            return out
        raise SpecError(
            field_path(loc),
            f"a {type(value).__name__} is not a JSON value; quote it to pass it as a string",
        )
