"""Domain errors; the API maps each to one HTTP status."""

from __future__ import annotations


class LrlabError(Exception):
    """Base for errors a client can cause."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(LrlabError):
    """The object does not exist, or belongs to another project (indistinguishable)."""


class Conflict(LrlabError):
    """The request is valid but clashes with the object's state."""


class InvalidInput(LrlabError):
    """Input that passed the schema but breaks a rule the service checks."""


class TooLarge(LrlabError):
    """A request over a configured size limit."""


class Unauthorized(LrlabError):
    """Missing, unknown or revoked token."""


class Forbidden(LrlabError):
    """A valid token without the right for this action."""
