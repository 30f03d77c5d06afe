"""Exceptions the SDK raises: one per kind of answer, each carrying the server's message.

The server answers errors as {"detail": [{"field", "message", "type", "in"}]}; every
exception keeps that list as `details` and its fields as `fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "Conflict",
    "ConnectionFailed",
    "ErrorDetail",
    "Forbidden",
    "LrlabError",
    "NotFound",
    "PayloadTooLarge",
    "RequestError",
    "ServerError",
    "Unauthorized",
    "ValidationError",
    "error_from_response",
]


@dataclass(frozen=True)
class ErrorDetail:
    """One item of an error body: which field (dotted path, '' for none) broke which rule."""

    field: str
    message: str
    type: str = "invalid"
    location: str | None = None  # body, query, path or header

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class LrlabError(Exception):
    """Base of every error the SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        details: list[ErrorDetail] | None = None,
        context: str = "",
    ) -> None:
        super().__init__(f"{message} ({context})" if context else message)
        self.message = message  # the server's own words
        self.status_code = status_code
        self.details = details or []

    @property
    def fields(self) -> list[str]:
        """The fields the server named, in its order ('' entries left out)."""
        return [d.field for d in self.details if d.field]

    @property
    def field(self) -> str | None:
        """The first field named, if any."""
        return next(iter(self.fields), None)


class RequestError(LrlabError):
    """A 4xx answer without a more specific class."""


class ValidationError(RequestError):
    """422 (or 400): the request broke a rule; `fields` say where."""


class NotFound(RequestError):
    """404: no such object in this token's project (or no such route on this server)."""


class Unauthorized(RequestError):
    """401: a missing, unknown or revoked token."""


class Forbidden(RequestError):
    """403: the token lacks the right for this action."""


class Conflict(RequestError):
    """409: the request clashes with the object's state."""


class PayloadTooLarge(RequestError):
    """413: over a size limit of the server."""


class ServerError(LrlabError):
    """5xx, or an answer the SDK cannot read."""


class ConnectionFailed(LrlabError):
    """The server could not be reached (after the retries the client allows)."""


_BY_STATUS: dict[int, type[LrlabError]] = {
    400: ValidationError,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
}


def _details(body: Any) -> list[ErrorDetail]:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return [ErrorDetail(field="", message=detail)]
    if not isinstance(detail, list):
        return []
    out = []
    for item in detail:
        if isinstance(item, dict):
            out.append(
                ErrorDetail(
                    field=str(item.get("field") or ""),
                    message=str(item.get("message") or item.get("msg") or "invalid"),
                    type=str(item.get("type") or "invalid"),
                    location=item.get("in"),
                )
            )
    return out


def error_from_response(response: httpx.Response) -> LrlabError:
    """The exception for an error answer, with the server's message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    details = _details(body)
    if details:
        message = "; ".join(str(d) for d in details)
    else:
        text = response.text.strip()[:500]
        message = text or response.reason_phrase or f"HTTP {response.status_code}"
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else RequestError)
    request = response.request
    return cls(
        message,
        status_code=status,
        details=details,
        context=f"HTTP {status} {request.method} {request.url.path}",
    )
