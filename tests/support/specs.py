"""Spec test helpers: the one-line error the API would show for some data, and valid
arguments for every distribution (shared by the sampling and the validation tests)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.specs import spec_errors

DISTRIBUTION_CASES: dict[str, dict[str, Any]] = {
    "uniform": {"low": -2.0, "high": 3.0},
    "log_uniform": {"low": 1e-5, "high": 1e-1},
    "inv_log_uniform": {"low": 0.01, "high": 100.0},
    "int_uniform": {"low": -3, "high": 4},
    "q_uniform": {"low": 0.0, "high": 10.0, "q": 1},
    "q_log_uniform": {"low": 1.0, "high": 1000.0, "q": 10},
    "normal": {"mu": 1.5, "sigma": 2.0},
    "q_normal": {"mu": 0.0, "sigma": 1.0, "q": 0.25},
    "log_normal": {"mu": -3.0, "sigma": 0.5},
    "q_log_normal": {"mu": 3.0, "sigma": 1.0, "q": 2},
    "beta": {"a": 2.0, "b": 5.0},
    "q_beta": {"a": 0.5, "b": 0.5, "q": 0.1},
}


def error_text(model: type[BaseModel], data: Any) -> str:
    """The validation error of `data`, as the one line the API would show."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return "; ".join(str(err) for err in spec_errors(info.value))


def assert_rejected(model: type[BaseModel], data: Any, *fragments: str) -> str:
    text = error_text(model, data)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def trial(**fields: Any) -> dict[str, Any]:
    return {"task": "digits", **fields}
