"""`lr: auto` as a spec: its forms, its rules, and the lr parameter a range test gives."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from services.specs import DistributionParam, SweepSpec, TrialSpec, ValuesParam, spec_errors
from services.specs.range_test import resolve_auto_lr

BASE = {"task": "digits", "optimizer": {"name": "adam"}}


def sweep(**fields: Any) -> SweepSpec:
    return SweepSpec.model_validate({"base": BASE, **fields})


def rejected(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        sweep(**fields)
    return [(e.field, e.message) for e in spec_errors(info.value)]


def test_auto_moves_out_of_the_space_into_lr_auto() -> None:
    spec = sweep(space={"optimizer.lr": "auto", "batch_size": [32, 64]})
    assert spec.method == "grid" and list(spec.space) == ["batch_size"]
    assert spec.lr_auto is not None and spec.lr_auto.values == 5
    assert spec.lr_auto.range_test.min_lr == 1e-7 and spec.lr_auto.resolution is None
    # The stored form reads back as the same spec.
    assert SweepSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_the_from_form_takes_range_test_options_and_values() -> None:
    spec = sweep(
        method="random",
        space={"optimizer.lr": {"from": "range_test", "min_lr": 1e-5, "steps": 60, "values": 3}},
    )
    assert spec.lr_auto is not None
    assert spec.lr_auto.values == 3
    assert spec.lr_auto.range_test.min_lr == 1e-5 and spec.lr_auto.range_test.steps == 60


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"space": {"batch_size": "auto"}}, "space.batch_size", "only for optimizer.lr"),
        ({"space": {"optimizer.lr": {"from": "grid"}}}, "space['optimizer.lr']", "range_test"),
        ({"method": "single", "space": {"optimizer.lr": "auto"}}, "lr_auto", "grid, random"),
        (
            {"space": {"optimizer.lr": "auto", "optimizer.name": ["sgd", "adam"]}},
            "space['optimizer.name']",
            "over optimizers",
        ),
        (
            {"space": {"optimizer.lr": {"from": "range_test", "max_lr": 1e-9}}},
            "lr_auto.range_test.max_lr",
            "greater than min_lr",
        ),
        (
            {"space": {"optimizer.lr": {"from": "range_test", "colour": 1}}},
            "lr_auto.range_test.colour",
            "unknown key",
        ),
        (
            {"space": {"optimizer.lr": "auto"}, "lr_auto": {}},
            "lr_auto",
            "not both",
        ),
        (
            {"space": {"optimizer.lr": [0.1]}, "lr_auto": {}},
            "space['optimizer.lr']",
            "range test fills it in",
        ),
    ],
)
def test_auto_errors_name_the_field(fields: dict[str, Any], field: str, words: str) -> None:
    errors = rejected(**fields)
    assert any(f == field and words in m for f, m in errors), errors


def test_random_and_bayes_with_only_auto_in_space_are_accepted() -> None:
    assert sweep(method="bayes", space={"optimizer.lr": "auto"}).method == "bayes"


def test_a_grid_gets_values_evenly_spaced_in_log_between_the_bounds() -> None:
    spec = sweep(space={"optimizer.lr": "auto"})
    assert spec.lr_auto is not None
    param = resolve_auto_lr(spec.lr_auto, spec.base, "grid", 1e-3, 1e-1)
    assert isinstance(param, ValuesParam)
    assert param.values == [0.001, 0.00316, 0.01, 0.0316, 0.1]


def test_random_and_bayes_get_log_uniform_bounds() -> None:
    spec = sweep(method="random", space={"optimizer.lr": "auto"})
    assert spec.lr_auto is not None
    param = resolve_auto_lr(spec.lr_auto, spec.base, "random", 1e-3, 1e-1)
    assert isinstance(param, DistributionParam)
    assert (param.distribution, param.low, param.high) == ("log_uniform", 1e-3, 1e-1)


def test_bounds_measured_at_the_batch_size_become_spec_lrs_under_lr_scaling() -> None:
    base = TrialSpec.model_validate(
        {**BASE, "batch_size": 128, "lr_scaling": {"rule": "sqrt", "base_batch_size": 32}}
    )
    spec = SweepSpec(base=base, method="random", space={}, lr_auto={})  # type: ignore[arg-type]
    assert spec.lr_auto is not None
    param = resolve_auto_lr(spec.lr_auto, base, "random", 2e-3, 2e-1)
    # The test trained at batch size 128, where sqrt scaling doubles the spec's lr.
    assert isinstance(param, DistributionParam)
    assert param.low == pytest.approx(1e-3) and param.high == pytest.approx(1e-1)


def test_bad_bounds_are_refused() -> None:
    spec = sweep(space={"optimizer.lr": "auto"})
    assert spec.lr_auto is not None
    for low, high in [(0.1, 0.01), (0.0, 1.0), (1e-3, math.inf)]:
        with pytest.raises(ValueError, match="0 < low < high"):
            resolve_auto_lr(spec.lr_auto, spec.base, "grid", low, high)
