"""Every error a client can cause becomes a 4xx that names the field and the rule."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LrlabError,
    NotFound,
    TooLarge,
    Unauthorized,
)
from services.domain.stored_specs import StoredSpecError
from services.specs import field_path

log = logging.getLogger("lrlab.api")

STATUS = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    TooLarge: 413,
    Unauthorized: 401,
    Forbidden: 403,
}

# Where a request error came from is the HTTP part, not a field of the document.
_SOURCES = ("body", "query", "path", "header")


def _detail(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        source = loc.pop(0) if loc and loc[0] in _SOURCES else None
        message = str(err.get("msg", "invalid"))
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err.get("type") == "json_invalid":
            # FastAPI puts the character offset where a field path would be.
            reason = (err.get("ctx") or {}).get("error", "")
            message = f"invalid JSON at character {loc[0] if loc else 0}: {reason}".rstrip(": ")
            loc = []
        item: dict[str, Any] = {
            "field": field_path(loc),
            "message": message,
            "type": err.get("type", "invalid"),
        }
        if source:
            item["in"] = source
        out.append(item)
    return out


def error_body(message: str, field: str | None = None, kind: str = "invalid") -> dict[str, Any]:
    return {"detail": [{"field": field or "", "message": message, "type": kind}]}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _detail(list(exc.errors()))})

    @app.exception_handler(ValidationError)
    async def _model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        # A client's input is checked where it arrives and fails as RequestValidationError
        # (422, above); a pydantic error that gets here came from data the server made or
        # stored, so it is the server's: logged, and a 500 that does not blame the request.
        log.error("%s %s: server-side validation failed: %s", request.method, request.url.path, exc)
        return JSONResponse(
            status_code=500,
            content=error_body(
                f"the server could not build a valid {exc.title}; this is logged", kind="server"
            ),
        )

    @app.exception_handler(LrlabError)
    async def _domain(_: Request, exc: LrlabError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(
            status_code=status,
            content=error_body(exc.message, exc.field, type(exc).__name__),
            headers=headers,
        )

    @app.exception_handler(StoredSpecError)
    async def _stored_spec(_: Request, exc: StoredSpecError) -> JSONResponse:
        # What the store holds no longer decodes: the server's fault, so a 500 that says
        # which object and why, and a log line for whoever runs the server.
        log.error("%s", exc)
        return JSONResponse(status_code=500, content=error_body(str(exc), kind="stored_spec"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing errors (404, 405) and bodies that cannot be parsed at all: same shape.
        return JSONResponse(
            status_code=exc.status_code,
            content=error_body(str(exc.detail), kind="http"),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        log.warning("a number too large for the store: %s", exc)
        return JSONResponse(
            status_code=422,
            content=error_body("a number is too large for the store", kind="overflow"),
        )

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # A value the schema let through but the database cannot hold: still the client's.
        log.warning("database rejected a value: %s", exc.orig)
        return JSONResponse(
            status_code=422,
            content=error_body("a value is out of the range the store can hold", kind="data"),
        )
