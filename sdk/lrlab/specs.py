"""Sweep documents: a native lrlab spec or a W&B sweep configuration, as YAML or JSON.

POST /sweeps takes either: the Content-Type says the syntax (JSON or YAML), and the
server tells the schema from the document's keys, unless `?format=native|wandb` says it.
Files are sent as they are (so the server's errors point into the file: a W&B parameter
path, a YAML line and column); a format is sent only when given, so that one rule, the
server's, reads the keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

SpecFormat = Literal["auto", "native", "wandb"]
FORMATS: tuple[str, ...] = ("auto", "native", "wandb")
JSON_TYPE = "application/json"
YAML_TYPE = "application/yaml"


class SpecFileError(ValueError):
    """A file that is not a readable sweep document."""


@dataclass(frozen=True)
class SweepRequest:
    """How to send one sweep document."""

    content: bytes
    content_type: str
    format: Literal["native", "wandb"] | None  # None: the server reads the keys

    @property
    def params(self) -> dict[str, str]:
        return {} if self.format is None else {"format": self.format}

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type}


def _resolve(fmt: SpecFormat) -> Literal["native", "wandb"] | None:
    if fmt == "auto":
        return None
    if fmt not in ("native", "wandb"):
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def document_request(doc: dict[str, Any], fmt: SpecFormat = "auto") -> SweepRequest:
    """A sweep given as a dict, sent as JSON."""
    return SweepRequest(json.dumps(doc).encode(), JSON_TYPE, _resolve(fmt))


def _parse(text: str, is_json: bool, name: str) -> Any:
    try:
        return json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecFileError(f"{name} is not valid {'JSON' if is_json else 'YAML'}: {exc}") from exc


def file_request(path: str | Path, fmt: SpecFormat = "auto") -> SweepRequest:
    """A sweep file (.json, .yaml or .yml; other names: JSON if it parses, else YAML),
    sent with its own bytes."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise SpecFileError(f"cannot read {file}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        is_json = False
    elif suffix == ".json":
        is_json = True
    else:
        try:
            json.loads(text)
            is_json = True
        except ValueError:
            is_json = False
    doc = _parse(text, is_json, str(file))
    if not isinstance(doc, dict):
        raise SpecFileError(f"{file} must hold a mapping at the top, not {type(doc).__name__}")
    return SweepRequest(raw, JSON_TYPE if is_json else YAML_TYPE, _resolve(fmt))
