"""The derived fields of a schedule named alone: each rule of services.specs.schedule_defaults
for a trial's steps and lr, fields the spec sets left alone, and runs a few steps long."""

from __future__ import annotations

from typing import Any

import pytest

from services.specs import SCHEDULES
from services.specs.schedule_defaults import warmup_steps_of, with_defaults
from services.specs.schedules import ScheduleParams


def schedule(name: str, **fields: Any) -> ScheduleParams:
    return SCHEDULES[name].model_validate({"name": name, **fields})


@pytest.mark.parametrize(
    ("name", "fields", "derived"),
    [
        ("step", {}, {"step_size": 334, "gamma": 0.1}),  # ceil(1000 / 3): two drops
        ("multistep", {}, {"milestones": [500, 750]}),
        ("exponential", {}, {"gamma": pytest.approx(0.01 ** (1 / 1000))}),
        ("cosine_restarts", {}, {"T_0": 250}),
        ("cyclic", {}, {"max_lr": pytest.approx(0.2), "step_size_up": 250}),
        ("cyclic", {"base_lr": 0.01}, {"max_lr": pytest.approx(0.04)}),
        ("one_cycle", {}, {"max_lr": 0.05}),
        # a field the spec sets is never changed
        ("step", {"step_size": 7}, {"step_size": 7}),
        ("cyclic", {"max_lr": 0.3, "step_size_up": 9}, {"max_lr": 0.3, "step_size_up": 9}),
        ("cosine", {}, {"T_max": None}),  # cosine's own null: the whole budget, as before
    ],
)
def test_derived_fields(name: str, fields: dict[str, Any], derived: dict[str, Any]) -> None:
    got = with_defaults(schedule(name, **fields), total_steps=1000, lr=0.05)
    assert {key: getattr(got, key) for key in derived} == derived


def test_lengths_count_the_steps_after_the_warmup() -> None:
    got = with_defaults(schedule("step", warmup_fraction=0.1), total_steps=1000, lr=0.1)
    assert (got.warmup_steps, got.warmup_fraction, got.step_size) == (100, None, 300)
    assert with_defaults(schedule("step", warmup_steps=400), 1000, 0.1).step_size == 200


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_a_run_of_a_few_steps_still_gets_valid_lengths(steps: int) -> None:
    assert with_defaults(schedule("step"), steps, 0.1).step_size == 1
    milestones = with_defaults(schedule("multistep"), steps, 0.1).milestones
    assert milestones == sorted(set(milestones or [])) and min(milestones or [0]) >= 1
    assert with_defaults(schedule("cosine_restarts"), steps, 0.1).T_0 == 1


def test_warmup_fraction_rounds_and_never_vanishes() -> None:
    assert warmup_steps_of(schedule("constant", warmup_fraction=0.06), 1000) == 60
    assert warmup_steps_of(schedule("constant", warmup_fraction=0.01), 20) == 1
    assert warmup_steps_of(schedule("constant", warmup_steps=7), 1000) == 7
    assert warmup_steps_of(schedule("constant", warmup_fraction=0), 1000) == 0
