"""The base every spec model shares, the free-text type, and how spec errors are reported.

Errors follow one rule (docs/architecture.md): each names the field and the rule it broke. Pydantic
already does that for single-field constraints; for unknown keys and cross-field rules we
raise errors located at the offending field (see `fail`), so `spec_errors` can turn any
ValidationError into (field path, message) pairs without parsing messages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, NoReturn

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "MAX_STEPS",
    "Loc",
    "Problem",
    "SpecError",
    "StrictModel",
    "Text",
    "describe_error",
    "fail",
    "field_path",
    "raise_problems",
    "rule_error",
    "spec_errors",
]

Loc = tuple[int | str, ...]

# Upper bounds no real run reaches, so that a typo (`max_steps: 2**70`, `batch_size: 1e12`)
# is a 422 naming the field rather than a trial that fails or never ends. A billion steps
# is years at a thousand steps a second; ten million examples fill any one device.
MAX_STEPS = 1_000_000_000  # every length counted in optimizer steps or evaluations
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 10_000_000


class SpecError(ValueError):
    """A spec problem found outside pydantic validation (e.g. while expanding a grid)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Problem:
    """A rule a spec breaks, found by a check outside its model: where and why."""

    loc: Loc
    message: str


def raise_problems(title: str, problems: Sequence[Problem], kind: str = "spec_rule") -> None:
    """Raise every problem as one ValidationError (so each becomes a located 422); none: return."""
    if problems:
        details = [
            InitErrorDetails(type=rule_error(p.message, kind), loc=p.loc, input=None)
            for p in problems
        ]
        raise ValidationError.from_exception_data(title, details)


def rule_error(message: str, kind: str = "spec_rule") -> PydanticCustomError:
    # The message goes through the context, not the template, so braces in it (a dict
    # in a combination, say) are never read as format fields.
    return PydanticCustomError(kind, "{message}", {"message": message})


def fail(loc: Loc, message: str, value: Any = None, kind: str = "spec_rule") -> NoReturn:
    """Raise a validation error located at `loc`, relative to the model being validated.

    Raised from a validator, pydantic-core prefixes the loc with the model's own position,
    so a cross-field rule can point at the field it is about instead of at the model.
    """
    detail = InitErrorDetails(type=rule_error(message, kind), loc=loc, input=value)
    raise ValidationError.from_exception_data("spec", [detail])


class StrictModel(BaseModel):
    """Frozen, no extra keys, finite floats, strict types; unknown keys are named with the
    valid ones.

    Strict: a number is a JSON number, never a boolean (`lr: true` is not 1.0) nor a
    string (`lr: "0.1"`), and an integer field takes no float (`epochs: 10.0`); a float
    field takes an integer. A tuple field must accept the lists JSON has (see `Betas`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    # Used in messages: "unknown key 'x' for <label>".
    spec_label: ClassVar[str] = "spec"

    @classmethod
    def label(cls) -> str:
        return cls.spec_label

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        # extra="forbid" alone says "Extra inputs are not permitted" without the valid
        # keys; we want a message a user can act on, one error per unknown key.
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields)
        unknown = [key for key in data if key not in known]
        if unknown:
            valid = ", ".join(sorted(known))
            details = [
                InitErrorDetails(
                    type=rule_error(
                        f"unknown key {key!r} for {cls.label()}; valid keys: {valid}",
                        "unknown_key",
                    ),
                    loc=(key,) if isinstance(key, str | int) else (repr(key),),
                    input=data[key],
                )
                for key in unknown
            ]
            raise ValidationError.from_exception_data("spec", details)
        return data


def _check_text(value: str) -> str:
    for position, char in enumerate(value):
        # Cc covers NUL, which PostgreSQL rejects in text and JSONB, so it would fail later,
        # in the store. (Lone surrogates never get here: pydantic's str refuses them.)
        if unicodedata.category(char) == "Cc":
            raise rule_error(
                f"must not contain control characters (found {char!r} at position {position})"
            )
    return value


# Names and descriptions: stripped, 1..200 characters, printable.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_check_text),
]


def field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "." in part or not part:
            # sweep space keys are dotted paths themselves (and a mapping's key may be
            # empty): bracket them to keep them whole and visible
            path += f"[{part!r}]"
        else:
            path += f".{part}" if path else part
    return path


def spec_errors(exc: ValidationError) -> list[SpecError]:
    """One SpecError per pydantic error: field is the dotted path ('' for the whole spec)."""
    out = []
    for error in exc.errors(include_url=False):
        message = error["msg"]
        # Only our own errors are custom; stray ValueErrors get pydantic's prefix.
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        out.append(SpecError(field_path(error["loc"]), message))
    return out


def describe_error(exc: ValidationError) -> str:
    """All errors as one line, for logs and for wrapping in a SpecError."""
    return "; ".join(str(err) for err in spec_errors(exc))
