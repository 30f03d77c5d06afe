"""The LR range test through the real runner on digits: the ramp, the curve, the stop."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.analyzer.lr_find import suggest_lrs
from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec, spec_errors
from services.specs.range_test import RangeTestOptions, range_test_spec
from tests.support.training import run

BASE = TrialSpec.model_validate(
    {
        "task": "digits",
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "schedule": {"name": "cosine", "warmup_steps": 5},
        "batch_size": 64,
        "lr_scaling": {"rule": "linear", "base_batch_size": 32},
        "regularization": {"swa": {"start_step": 50, "swa_lr": 0.01}},
        "budget": {"epochs": 3},
    }
)


def test_the_range_test_spec_keeps_the_model_and_swaps_in_the_ramp() -> None:
    spec = range_test_spec(BASE, RangeTestOptions(min_lr=1e-5, max_lr=1.0, steps=40))
    assert spec.task == BASE.task and spec.batch_size == 64
    assert spec.optimizer.name == "sgd" and spec.optimizer.lr == 1e-5
    assert spec.optimizer.model_dump()["momentum"] == 0.9
    assert spec.schedule.name == "range_test" and spec.budget.max_steps == 40
    assert spec.lr_scaling.rule == "none" and spec.regularization.swa is None
    assert spec.stop is not None and spec.stop.loss_above_best == 4.0
    assert spec.stop.loss_above_start is None  # the ramp is judged against its best alone


def test_the_ramp_is_exponential_from_min_lr_to_max_lr(tmp_path: Path) -> None:
    # Too low to blow up: the test runs all its steps, the last one at max_lr.
    spec = range_test_spec(BASE, RangeTestOptions(min_lr=1e-6, max_lr=1e-3, steps=20))
    result, sink = run(spec.model_dump(mode="json"), tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED and result.detail is None
    lrs = sink.series("lr")
    assert len(lrs) == 20
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1e-3)
    ratios = [b / a for a, b in itertools.pairwise(lrs)]
    assert ratios == pytest.approx([1000 ** (1 / 19)] * 19)


def test_a_high_max_lr_stops_the_test_on_blow_up_before_its_last_step(tmp_path: Path) -> None:
    opts = RangeTestOptions(min_lr=1e-5, max_lr=100.0, steps=100)
    result, sink = run(range_test_spec(BASE, opts).model_dump(mode="json"), tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED
    assert result.last_step is not None and result.last_step < 99
    assert result.detail is not None and result.detail.startswith("range test ended: ")
    lrs, losses = sink.series("lr"), sink.series("train_loss")
    assert len(lrs) == len(losses) == result.last_step + 1  # the curve up to the stop
    reading = suggest_lrs(lrs, losses, smoothing=opts.smoothing, finished=True)
    assert reading.verdict == "ok"
    # The runner and the reading agree on where the loss blew up: the last point.
    assert reading.blowup_index == len(losses) - 1 or not math.isfinite(losses[-1])
    assert reading.recommended is not None
    assert 1e-3 < reading.recommended.lr < 10


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"schedule": {"name": "range_test", "end_lr": 0.01}}, "schedule.end_lr", "greater"),
        ({"stop": {"loss_above_best": 1.0}}, "stop.loss_above_best", "greater than 1"),
        ({"stop": {"smoothing": 1.0}}, "stop.smoothing", "less than 1"),
        ({"stop": {"after": 3}}, "stop.after", "unknown key"),
    ],
)
def test_range_test_spec_errors_name_the_field(change: dict, field: str, words: str) -> None:
    data = {"task": "digits", "optimizer": {"name": "sgd", "lr": 0.1}, **change}
    with pytest.raises(ValidationError) as info:
        TrialSpec.model_validate(data)
    (error,) = spec_errors(info.value)
    assert error.field == field and words in error.message


def test_range_test_options_need_a_rising_ramp() -> None:
    with pytest.raises(ValidationError) as info:
        RangeTestOptions(min_lr=1.0, max_lr=0.1)
    (error,) = spec_errors(info.value)
    assert error.field == "max_lr" and "greater than min_lr" in error.message
