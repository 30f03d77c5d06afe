"""The shared spec machinery: strict models, free text, error reporting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from services.specs import SpecError, StrictModel, SweepSpec, Text, TrialSpec, spec_errors
from tests.support.specs import assert_rejected, error_text, trial


class _Named(StrictModel):
    spec_label = "thing"

    name: Text
    size: int = 1


def test_unknown_key_names_the_key_and_lists_valid_keys_sorted() -> None:
    assert_rejected(
        _Named,
        {"name": "a", "colour": "red"},
        "colour: unknown key 'colour' for thing; valid keys: name, size",
    )


def test_every_unknown_key_is_reported() -> None:
    text = error_text(_Named, {"name": "a", "b": 1, "c": 2})
    assert "unknown key 'b'" in text
    assert "unknown key 'c'" in text


def test_text_is_stripped() -> None:
    assert _Named(name="  run 1 ").name == "run 1"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("a\x00b", "control characters"),
        ("line\nbreak", "control characters"),
        ("\ud800", "unicode string"),  # pydantic refuses lone surrogates itself
        ("   ", "at least 1 character"),
        ("x" * 201, "at most 200 characters"),
    ],
)
def test_text_rejects(value: str, rule: str) -> None:
    assert_rejected(_Named, {"name": value}, "name: ", rule)


def test_nul_byte_in_a_sweep_name() -> None:
    assert_rejected(
        SweepSpec,
        {"name": "lr\x00sweep", "base": trial()},
        "name: must not contain control characters",
        "'\\x00'",
    )


def test_models_are_frozen() -> None:
    spec = TrialSpec.model_validate(trial())
    with pytest.raises(ValidationError):
        spec.seed = 3


def test_spec_errors_give_dotted_field_paths() -> None:
    with pytest.raises(ValidationError) as info:
        TrialSpec.model_validate(trial(optimizer={"name": "adam", "betas": [0.9, 1.0]}))
    (error,) = spec_errors(info.value)
    assert error.field == "optimizer.betas[1]"
    assert "less than 1" in error.message


def test_cross_field_errors_are_located_at_their_field() -> None:
    # The API relies on pydantic's loc pointing at the field, not at the whole model.
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(
            {"base": trial(schedule={"name": "cyclic", "base_lr": 0.2, "max_lr": 0.1})}
        )
    (error,) = info.value.errors()
    assert error["loc"] == ("base", "schedule", "max_lr")
    assert error["type"] == "spec_rule"
    assert error["msg"] == "max_lr (0.1) must be greater than base_lr (0.2)"


def test_dotted_space_keys_are_bracketed() -> None:
    text = error_text(
        SweepSpec,
        {
            "base": trial(),
            "method": "random",
            "space": {"optimizer.lr": {"distribution": "uniform", "low": 1, "high": 0}},
        },
    )
    assert text.startswith("space['optimizer.lr'].low: ")


def test_spec_error_carries_field_and_message() -> None:
    err = SpecError("space", "too big")
    assert (err.field, err.message, str(err)) == ("space", "too big", "space: too big")
    assert isinstance(err, ValueError)


@pytest.mark.subprocess
def test_specs_import_no_heavy_dependencies() -> None:
    code = (
        "import sys, services.specs; "
        "print(sorted({'torch', 'ray', 'fastapi', 'sqlalchemy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
