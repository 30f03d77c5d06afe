"""Trials trained for real: the scheduler, the Ray launcher, torch, and the store."""

from __future__ import annotations

import itertools
import math
import os
import signal
import time

import pytest
from sqlalchemy import text

from services.domain.records import TrialStatus
from services.scheduling.scheduler import Scheduler
from services.store import Store
from tests.support.sweeps import DIGITS, all_done, drive, series, submit, trials
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("ray_local")


def test_a_grid_sweep_trains_every_trial_and_streams_its_metrics(
    store: Store, ray_scheduler: Scheduler
) -> None:
    sweep_id = submit(store, DIGITS, {"optimizer.lr": [0.01, 0.1, 0.5]})
    drive(ray_scheduler, all_done(store, sweep_id))
    done = trials(store, sweep_id)
    assert [t.status for t in done] == [TrialStatus.SUCCEEDED] * 3
    for t in done:
        steps, losses = series(store, t, "train_loss")
        assert steps == list(range(40))
        assert all(math.isfinite(v) for v in losses)
        assert series(store, t, "val_loss")[0] == [9, 19, 29, 39]
        lr_steps, lrs = series(store, t, "lr")
        assert lr_steps == list(range(40)) and set(lrs) == {t.params["optimizer.lr"]}
        assert {"grad_norm", "val_accuracy", "samples_per_sec"} <= set(
            store.metrics.names(t.project_id, t.id)
        )
        assert t.worker is not None
    # The best lr learns: its last training loss is well below the start (~2.3).
    assert min(series(store, t, "train_loss")[1][-1] for t in done) < 1.0
    project = store.projects.get_by_name("p")
    assert project is not None
    assert store.sweeps.get(project.id, sweep_id).status.value == "finished"


def test_the_loop_launches_the_next_trial_as_soon_as_ray_finishes_one(
    store: Store, ray_scheduler: Scheduler
) -> None:
    """No periodic tick for an hour: only Ray's completion callbacks can move the sweep on."""
    base = {**DIGITS, "budget": {"max_steps": 5}, "eval_every": 5}
    # One at a time: each launch needs the previous trial's end to be heard.
    sweep_id = submit(store, base, {"seed": [1, 2, 3]}, concurrent=1)
    ray_scheduler.start(interval=3600)
    try:
        ray_scheduler.wake()
        wait_until(all_done(store, sweep_id), "the sweep finished without ticks", 120)
    finally:
        ray_scheduler.stop(timeout=30)
    done = trials(store, sweep_id)
    assert [t.status for t in done] == [TrialStatus.SUCCEEDED] * 3
    spans = sorted((t.started_at, t.finished_at) for t in done if t.finished_at)
    assert len(spans) == 3
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # type: ignore[operator]


def test_a_diverging_lr_stops_at_once_as_pruned_with_the_non_finite_loss_recorded(
    store: Store, ray_scheduler: Scheduler
) -> None:
    base = {**DIGITS, "optimizer": {"name": "sgd", "lr": 1.0e4}, "budget": {"max_steps": 400}}
    sweep_id = submit(store, base)
    drive(ray_scheduler, all_done(store, sweep_id))
    (t,) = trials(store, sweep_id)
    assert t.status is TrialStatus.PRUNED
    assert t.stop_reason is not None and t.stop_reason.startswith("diverged")
    steps, losses = series(store, t, "train_loss")
    assert not math.isfinite(losses[-1])
    assert all(math.isfinite(v) for v in losses[:-1])
    assert steps[-1] < 399  # it did not burn its budget


def test_cancelling_a_running_trial_stops_it_within_seconds(
    store: Store, ray_scheduler: Scheduler
) -> None:
    sweep_id = submit(store, {**DIGITS, "budget": {"max_steps": 1_000_000}})
    (t,) = trials(store, sweep_id)
    drive(ray_scheduler, lambda: bool(store.metrics.names(t.project_id, t.id)))
    requested = time.monotonic()
    store.trials.cancel(t.project_id, t.id)
    drive(ray_scheduler, all_done(store, sweep_id), timeout=30)
    assert time.monotonic() - requested < 10
    (t,) = trials(store, sweep_id)
    assert t.status is TrialStatus.CANCELLED


@pytest.mark.slow
def test_a_killed_worker_resumes_from_its_checkpoint_without_gaps_or_duplicates(
    store: Store, ray_scheduler: Scheduler
) -> None:
    base = {
        "task": "digits",
        # Long enough that the kill lands mid-run: the sink writes about once a second, so
        # a short trial can be over before its first checkpointed step is visible.
        "budget": {"max_steps": 4000},
        "eval_every": 50,
        "checkpoint_every": 100,
        "max_restarts": 2,
    }
    sweep_id = submit(store, base)
    (t,) = trials(store, sweep_id)

    def past_first_checkpoint() -> bool:
        steps, _ = series(store, t, "train_loss")
        return bool(steps) and steps[-1] >= 150

    drive(ray_scheduler, past_first_checkpoint)
    running = store.trial_states.get(t.id)
    assert running is not None and running.worker is not None and running.attempt == 0
    os.kill(int(running.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    drive(ray_scheduler, all_done(store, sweep_id))
    (t,) = trials(store, sweep_id)
    assert t.status is TrialStatus.SUCCEEDED
    assert t.attempt == 1
    steps, _ = series(store, t, "train_loss")
    assert steps == list(range(4000))
    with store.db.session() as s:
        stored = s.execute(
            text("SELECT count(*) FROM metric_points WHERE trial_id = :t AND name = 'train_loss'"),
            {"t": t.id},
        ).scalar_one()
    assert stored == 4000
    events = [e.status for e in store.trials.events(t.project_id, t.id)]
    assert events.count(TrialStatus.RUNNING) == 2 and TrialStatus.QUEUED in events[1:]
