"""The body of POST /sweeps: a native sweep spec or a W&B sweep file, as JSON or YAML.

The rule: Content-Type says the syntax, the `format` query parameter the schema.
- `application/json` (or `...+json`, or no Content-Type): JSON, a native spec by default;
- `application/yaml`, `application/x-yaml`, `text/yaml`, `text/x-yaml`: YAML, a W&B sweep
  file by default;
- `?format=wandb` or `?format=native` says which schema either syntax holds.
So native JSON works as it always did, a W&B YAML file needs only its Content-Type, and a
W&B file as JSON adds `?format=wandb`. Other content types are 415; bodies over
MAX_SPEC_BYTES 413; YAML syntax errors 422 with the line and column.
"""

from __future__ import annotations

import json
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
from services.specs.wandb import parse_wandb

__all__ = ["MAX_SPEC_BYTES", "OPENAPI", "SweepBody", "sweep_warnings"]

MAX_SPEC_BYTES = 4 * 1024 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
Syntax = Literal["json", "yaml"]
SpecFormat = Literal["native", "wandb"]


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


def _spec(
    raw: bytes, syntax: Syntax, schema: SpecFormat, grid_limit: int, warnings: list[str]
) -> SweepSpec:
    try:
        data = _json(raw) if syntax == "json" else load_yaml(raw)
    except SpecError as exc:
        raise InvalidInput(exc.message, field=exc.field) from None
    try:
        if schema == "wandb":
            return parse_wandb(data, grid_limit=grid_limit, warnings=warnings)
        # from_attributes as FastAPI validates a typed body: the same messages as before.
        return SweepSpec.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


async def sweep_body(
    request: Request,
    settings: SettingsDep,
    spec_format: Annotated[
        SpecFormat | None,
        Query(
            alias="format",
            description="The body's schema: native (the default for JSON) or wandb, a W&B "
            "sweep configuration (the default for YAML).",
        ),
    ] = None,
) -> SweepSpec:
    syntax = _syntax(request.headers.get("content-type"))
    raw = await _read(request)
    schema: SpecFormat = spec_format or ("native" if syntax == "json" else "wandb")
    # What the body asks for that lrlab accepts but does not do: the route answers with it.
    warnings: list[str] = []
    request.state.sweep_warnings = warnings
    # Parsing a large YAML document takes a while: off the event loop.
    limit = settings.max_trials_per_sweep
    return await run_in_threadpool(_spec, raw, syntax, schema, limit, warnings)


def sweep_warnings(request: Request) -> list[str]:
    """The warnings parsing the body of this request found (none for other requests)."""
    return list(getattr(request.state, "sweep_warnings", []))


SweepBody = Annotated[SweepSpec, Depends(sweep_body)]

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
