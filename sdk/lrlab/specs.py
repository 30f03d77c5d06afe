"""Sweep files: a native lrlab spec or a W&B sweep configuration, as YAML or JSON.

`sweep_request` is the one place that decides how a document is sent, so a server that
takes W&B files another way changes only this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

SpecFormat = Literal["auto", "native", "wandb"]
FORMATS: tuple[str, ...] = ("auto", "native", "wandb")

# Keys only a W&B sweep configuration has (a native spec has base/space).
_WANDB_KEYS = frozenset({"parameters", "early_terminate", "run_cap", "program", "command"})


class SpecFileError(ValueError):
    """A file that is not a readable sweep document."""


def load_document(path: str | Path) -> dict[str, Any]:
    """The mapping in a .json, .yaml or .yml file (other names: JSON, then YAML)."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise SpecFileError(f"cannot read {file}: {exc.strerror or exc}") from exc
    suffix = file.suffix.lower()
    try:
        if suffix == ".json":
            doc = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            doc = yaml.safe_load(text)
        else:
            try:
                doc = json.loads(text)
            except ValueError:
                doc = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecFileError(f"{file} is not valid JSON or YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise SpecFileError(f"{file} must hold a mapping at the top, not {type(doc).__name__}")
    return doc


def detect_format(doc: dict[str, Any]) -> Literal["native", "wandb"]:
    return "wandb" if _WANDB_KEYS & doc.keys() else "native"


def sweep_request(doc: dict[str, Any], fmt: SpecFormat = "auto") -> tuple[str, dict[str, Any]]:
    """(path, body) of the request that submits `doc`. Both formats go to POST /sweeps: the
    server tells a W&B configuration from a native spec by its keys."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return "/sweeps", doc
