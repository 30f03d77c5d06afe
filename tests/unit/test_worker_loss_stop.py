"""The loss blow-up stop (TrialSpec.stop, on by default) through the real runner: runs at
far too high an lr end pruned with the evidence, healthy runs whose schedules lift the
loss on purpose or whose batches are noisy train to the end, and `"stop": null` turns it
off."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec, spec_errors
from tests.support.training import digits, run
from workers.loss_stop import START_STEPS, LossWatch

# Plain SGD at lr 2 on digits: the loss climbs past 1e13 and stays finite for 300 steps.
TOO_HIGH = {"optimizer": {"name": "sgd", "lr": 2.0}, "budget": {"max_steps": 300}}


# SGD momentum 0.9 at lr 0.3 with cosine: train_loss falls near 0, then swings between 0
# and thousands and val_loss ends above 100, every loss finite.
SWINGING = {
    "optimizer": {"name": "sgd", "lr": 0.3, "momentum": 0.9},
    "schedule": {"name": "cosine"},
    "budget": {"epochs": 10},
}


def assert_stopped_on_blowup(spec: dict[str, Any], tmp_path: Path) -> list[float]:
    result, sink = run(spec, tmp_path)
    losses = sink.series("train_loss")
    assert result.outcome is RunOutcome.DIVERGED, result.detail
    assert result.detail is not None and result.detail.startswith("diverged: smoothed train_loss")
    assert f"at step {result.last_step}" in result.detail
    assert all(math.isfinite(v) for v in losses)  # no NaN was needed to stop it
    # The points end at the step that blew up; nothing after it was recorded.
    assert result.last_step == len(losses) - 1
    assert max(sink.points["lr"]) == result.last_step
    return losses


def test_a_finite_blow_up_ends_the_trial_pruned_long_before_its_budget(tmp_path: Path) -> None:
    losses = assert_stopped_on_blowup(digits(**TOO_HIGH), tmp_path)
    assert len(losses) < 100
    assert max(losses) > 20 * losses[0]


def test_the_demo_s_momentum_sgd_at_lr_1_ends_pruned(tmp_path: Path) -> None:
    # make demo's SGD (momentum 0.9) at lr 1: without the stop it ends `succeeded` at a
    # loss near 1e22, four epochs later.
    spec = digits(
        optimizer={"name": "sgd", "lr": 1.0, "momentum": 0.9},
        budget={"epochs": 4},
        eval_every=15,
    )
    assert_stopped_on_blowup(spec, tmp_path)


def test_a_loss_that_fell_to_zero_and_swings_up_is_stopped(tmp_path: Path) -> None:
    losses = assert_stopped_on_blowup(digits(**SWINGING, eval_every=50), tmp_path)
    assert min(losses) < 0.01 * losses[0]  # it had fallen far below its start first


HEALTHY = {
    "warmup_cosine": {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "schedule": {"name": "cosine", "warmup_steps": 100},
        "budget": {"epochs": 5},
    },
    "one_cycle": {
        "optimizer": {"name": "sgd", "lr": 0.04},
        "schedule": {"name": "one_cycle", "max_lr": 1.0},
        "budget": {"epochs": 5},
    },
    "cosine_restarts": {
        "optimizer": {"name": "sgd", "lr": 0.3},
        "schedule": {"name": "cosine_restarts", "T_0": 60},
        "budget": {"epochs": 6},
    },
    "cyclic": {
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "schedule": {"name": "cyclic", "max_lr": 0.3, "step_size_up": 40},
        "budget": {"epochs": 6},
    },
    "noisy_batches_of_2": {
        "optimizer": {"name": "adam", "lr": 3e-3},
        "batch_size": 2,
        "budget": {"max_steps": 2000},
    },
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_runs_train_to_the_end(name: str, tmp_path: Path) -> None:
    spec = digits(**HEALTHY[name], eval_every=50)
    result, sink = run(spec, tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED, result.detail
    assert result.detail is None
    losses = sink.series("train_loss")
    # Each run's loss rose well above its best on the way (so the stop had something to
    # judge) and still trained: its val_loss ends below where it started.
    assert max(losses[len(losses) // 2 :]) > 10 * min(losses)
    val = sink.series("val_loss")
    assert val[-1] < val[0]


def test_stop_null_turns_the_watch_off(tmp_path: Path) -> None:
    result, sink = run(digits(**TOO_HIGH, stop=None), tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED and result.detail is None
    losses = sink.series("train_loss")
    assert len(losses) == 300 and max(losses) > 1e6 * losses[0]


def test_an_explicit_stop_sets_the_bars(tmp_path: Path) -> None:
    # With a bar far above any loss reached, the same run is not stopped.
    result, _ = run(digits(**TOO_HIGH, stop={"loss_above_best": 1e30}), tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED
    strict = {"loss_above_best": 1.5, "loss_above_start": 1.2, "smoothing": 0.5}
    stopped, _ = run(digits(**TOO_HIGH, stop=strict), tmp_path / "strict")
    default, _ = run(digits(**TOO_HIGH), tmp_path / "default")
    assert stopped.outcome is default.outcome is RunOutcome.DIVERGED
    assert stopped.last_step is not None and default.last_step is not None
    assert START_STEPS <= stopped.last_step < default.last_step


def test_a_resumed_trial_stops_where_an_unbroken_one_does(tmp_path: Path) -> None:
    # The swinging run blows up near step 100: checkpointed at 60 and killed at 90, it
    # resumes with the watch's smoothed loss, start and best as they were.
    spec = digits(**SWINGING, eval_every=1000, checkpoint_every=60)
    whole, _ = run(spec, tmp_path / "whole")
    assert whole.outcome is RunOutcome.DIVERGED and whole.last_step is not None
    assert whole.last_step > 90
    stopped, _ = run(spec, tmp_path / "split", stop_at=90)
    assert stopped.outcome is RunOutcome.CANCELLED
    resumed, _ = run(spec, tmp_path / "split")
    assert (resumed.outcome, resumed.detail) == (whole.outcome, whole.detail)


def test_a_surrogate_loss_and_the_range_test_get_no_trial_watch() -> None:
    spec = TrialSpec.model_validate({"task": "cartpole"})
    assert spec.stop is not None  # the spec default is the same for every task...
    assert LossWatch.for_trial(spec, surrogate_loss=True) is None  # ...cartpole's is moot
    ramp = TrialSpec.model_validate(
        {
            "task": "digits",
            "optimizer": {"name": "sgd", "lr": 1e-5},
            "budget": {"max_steps": 20},
            "schedule": {"name": "range_test", "end_lr": 1.0},
        }
    )
    assert LossWatch.for_trial(ramp, surrogate_loss=False) is None
    assert LossWatch.for_range_test(ramp) is not None


def test_the_stop_is_on_by_default_and_null_turns_it_off() -> None:
    spec = TrialSpec.model_validate({"task": "digits"})
    assert spec.stop is not None
    assert (spec.stop.loss_above_best, spec.stop.loss_above_start) == (10.0, 2.0)
    assert spec.model_dump(mode="json")["stop"]["smoothing"] == 0.98
    assert TrialSpec.model_validate({"task": "digits", "stop": None}).stop is None


@pytest.mark.parametrize(
    ("stop", "field", "words"),
    [
        ({"loss_above_start": 0.5}, "stop.loss_above_start", "greater than or equal to 1"),
        ({"loss_above_best": 1}, "stop.loss_above_best", "greater than 1"),
        ({"enabled": False}, "stop.enabled", "unknown key"),
        (False, "stop", "or null to turn the stop off (got False)"),
    ],
)
def test_a_bad_stop_names_the_field_and_the_rule(stop: Any, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        TrialSpec.model_validate({"task": "digits", "stop": stop})
    (error,) = spec_errors(info.value)
    assert error.field == field and words in error.message
