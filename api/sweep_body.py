"""The body of POST /sweeps: a native sweep spec or a W&B sweep file, as JSON or YAML.

The rule: Content-Type says the syntax, the document's top-level keys the schema.
- `application/json` (or `...+json`, or no Content-Type): JSON;
  `application/yaml`, `application/x-yaml`, `text/yaml`, `text/x-yaml`: YAML;
- keys only a native spec has (`space`, `max_trials`, `early_stop`, ...) make it native,
  keys only a W&B file has (`parameters`, `run_cap`, `early_terminate`, `program`, ...)
  a W&B file, and a `base` without W&B's keys a native spec (`specs.sweep_format`);
  both at once is a 422 that says how to choose;
- `?format=native` or `?format=wandb` overrides the keys;
- keys that say neither: native for JSON, W&B for YAML (as before keys decided).
Other content types are 415; bodies over MAX_SPEC_BYTES 413; YAML syntax errors 422 with
the line and column. The sweep is then checked as a whole (`specs.sweep_checks`): what it
finds likely unintended comes back as the response's `warnings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import SettingsDep
from api.routes.metrics import _inline_schema
from services.domain.errors import InvalidInput, TooLarge
from services.specs import SpecError, SweepSpec
from services.specs.documents import load_yaml
from services.specs.sweep_checks import check_sweep
from services.specs.sweep_format import SweepFormat, sweep_format
from services.specs.wandb import parse_wandb

__all__ = ["MAX_SPEC_BYTES", "OPENAPI", "SweepBody", "SweepSubmission"]

MAX_SPEC_BYTES = 4 * 1024 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
Syntax = Literal["json", "yaml"]
# Where the keys say neither schema: what each syntax held by default before they did.
_BY_SYNTAX: dict[Syntax, SweepFormat] = {"json": "native", "yaml": "wandb"}


@dataclass(frozen=True)
class SweepSubmission:
    """A sweep as it arrived, checked: its spec, and the warnings found on the way (each a
    sentence naming its key), for the response."""

    spec: SweepSpec
    warnings: list[str] = field(default_factory=list)


def _syntax(content_type: str | None) -> Syntax:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media in YAML_TYPES:
        return "yaml"
    accepted = ", ".join(("application/json", *YAML_TYPES))
    raise HTTPException(415, f"unsupported Content-Type {media!r}; send one of: {accepted}")


async def _read(request: Request) -> bytes:
    too_large = f"a sweep spec is at most {MAX_SPEC_BYTES} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_SPEC_BYTES:
        raise TooLarge(f"{too_large}; this body declares {declared}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SPEC_BYTES:
            raise TooLarge(too_large)
    return bytes(body)


def _json(raw: bytes) -> Any:
    # Errors as FastAPI gives them for a typed JSON body, so native clients see no change.
    if not raw:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        ctx = {"error": exc.msg}
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error"}
        raise RequestValidationError([{**error, "input": {}, "ctx": ctx}]) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 text ({exc.reason})") from None
    except RecursionError:
        raise InvalidInput("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InvalidInput(f"invalid JSON: {exc}") from None


def _submission(
    raw: bytes, syntax: Syntax, given: SweepFormat | None, grid_limit: int
) -> SweepSubmission:
    try:
        data = _json(raw) if syntax == "json" else load_yaml(raw)
        schema = given or sweep_format(data) or _BY_SYNTAX[syntax]
    except SpecError as exc:
        raise InvalidInput(exc.message, field=exc.field) from None
    warnings: list[str] = []
    try:
        if schema == "wandb":
            spec = parse_wandb(data, grid_limit=grid_limit, warnings=warnings)
        else:
            # from_attributes as FastAPI validates a typed body: the same messages as before.
            spec = SweepSpec.model_validate(data, from_attributes=True)
            check_sweep(spec, warnings)
        return SweepSubmission(spec, warnings)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


async def sweep_body(
    request: Request,
    settings: SettingsDep,
    spec_format: Annotated[
        SweepFormat | None,
        Query(
            alias="format",
            description="The body's schema: native or wandb, a W&B sweep configuration. "
            "Unset: told from the body's top-level keys (space, max_trials, early_stop... "
            "native; parameters, run_cap, early_terminate... wandb), else native for JSON "
            "and wandb for YAML.",
        ),
    ] = None,
) -> SweepSubmission:
    syntax = _syntax(request.headers.get("content-type"))
    raw = await _read(request)
    # Parsing a large YAML document and building the trials a space can make take a
    # while: off the event loop.
    limit = settings.max_trials_per_sweep
    return await run_in_threadpool(_submission, raw, syntax, spec_format, limit)


SweepBody = Annotated[SweepSubmission, Depends(sweep_body)]

_WANDB_SCHEMA = {
    "type": "object",
    "description": "A W&B sweep configuration: method, metric, parameters, run_cap, "
    "early_terminate; lrlab's `base` key holds the native trial spec (default task digits).",
}
OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_schema(SweepSpec.model_json_schema())},
            **{media: {"schema": _WANDB_SCHEMA} for media in YAML_TYPES},
        },
    }
}
