"""Trials trained for real: the scheduler, the Ray launcher, torch, and the store."""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.domain import Trial, TrialStatus
from services.housekeeping import Housekeeping
from services.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps import submit_sweep

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture
def scheduler(store: Store, tmp_path: Path) -> Iterator[Scheduler]:
    from workers.ray_launcher import RayLauncher

    launcher = RayLauncher()
    sched = Scheduler(
        store,
        launcher,
        database_url=store.db.url,
        checkpoint_root=tmp_path / "checkpoints",
        lease_seconds=60,
        cancel_grace_seconds=5,
    )
    yield sched
    launcher.close()
    # Drain cancelled attempts so the next test starts with an idle cluster.
    deadline = time.monotonic() + 30
    while launcher.running() and time.monotonic() < deadline:
        launcher.poll()
        time.sleep(0.05)


def drive(
    sched: Scheduler,
    done: Callable[[], bool],
    timeout: float = 120.0,
    housekeeping: Housekeeping | None = None,
) -> None:
    """Tick the scheduler (and the housekeeping, if given) until `done()` holds (a
    condition, bounded in time)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached in time"
        sched.tick()
        if housekeeping is not None:
            housekeeping.tick()
        time.sleep(0.05)  # poll interval between ticks, not a stand-in for a condition


def submit(
    store: Store, base: dict[str, Any], space: dict[str, Any] | None = None, concurrent: int = 2
) -> int:
    project = store.projects.get_by_name("p") or store.projects.create("p")
    spec = SweepSpec.model_validate(
        {"base": base, "space": space or {}, "max_concurrent": concurrent}
    )
    return submit_sweep(store, Settings(), project.id, spec).id


def trials(store: Store, sweep_id: int) -> list[Trial]:
    project = store.projects.get_by_name("p")
    assert project is not None
    return store.sweeps.list_trials(project.id, sweep_id, limit=100, offset=0).items


def all_done(store: Store, sweep_id: int) -> Callable[[], bool]:
    return lambda: all(t.status.is_terminal for t in trials(store, sweep_id))


def series(store: Store, trial_id: int, name: str) -> tuple[list[int], list[float]]:
    (s,) = store.metrics.read(trial_id, [name])
    return s.steps, s.values


DIGITS = {"task": "digits", "budget": {"max_steps": 40}, "eval_every": 10, "checkpoint_every": 20}


def test_a_grid_sweep_trains_every_trial_and_streams_its_metrics(
    store: Store, scheduler: Scheduler
) -> None:
    sweep_id = submit(store, DIGITS, {"optimizer.lr": [0.01, 0.1, 0.5]})
    drive(scheduler, all_done(store, sweep_id))
    done = trials(store, sweep_id)
    assert [t.status for t in done] == [TrialStatus.SUCCEEDED] * 3
    for t in done:
        steps, losses = series(store, t.id, "train_loss")
        assert steps == list(range(40))
        assert all(math.isfinite(v) for v in losses)
        assert series(store, t.id, "val_loss")[0] == [9, 19, 29, 39]
        lr_steps, lrs = series(store, t.id, "lr")
        assert lr_steps == list(range(40)) and set(lrs) == {t.params["optimizer.lr"]}
        assert {"grad_norm", "val_accuracy", "samples_per_sec"} <= set(store.metrics.names(t.id))
        assert t.worker is not None
    # The best lr learns: its last training loss is well below the start (~2.3).
    assert min(series(store, t.id, "train_loss")[1][-1] for t in done) < 1.0
    project = store.projects.get_by_name("p")
    assert project is not None
    assert store.sweeps.get(project.id, sweep_id).status.value == "finished"


def test_the_loop_launches_the_next_trial_as_soon_as_ray_finishes_one(
    store: Store, scheduler: Scheduler
) -> None:
    """No periodic tick for an hour: only Ray's completion callbacks can move the sweep on."""
    base = {**DIGITS, "budget": {"max_steps": 5}, "eval_every": 5}
    # One at a time: each launch needs the previous trial's end to be heard.
    sweep_id = submit(store, base, {"seed": [1, 2, 3]}, concurrent=1)
    scheduler.start(interval=3600)
    try:
        scheduler.wake()
        deadline = time.monotonic() + 120
        while not all_done(store, sweep_id)():
            assert time.monotonic() < deadline, "the sweep did not finish without ticks"
            time.sleep(0.05)  # polling the store for the condition
    finally:
        scheduler.stop(timeout=30)
    done = trials(store, sweep_id)
    assert [t.status for t in done] == [TrialStatus.SUCCEEDED] * 3
    spans = sorted((t.started_at, t.finished_at) for t in done if t.finished_at)
    assert len(spans) == 3
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # type: ignore[operator]


def test_a_diverging_lr_stops_at_once_as_pruned_with_the_non_finite_loss_recorded(
    store: Store, scheduler: Scheduler
) -> None:
    base = {**DIGITS, "optimizer": {"name": "sgd", "lr": 1.0e4}, "budget": {"max_steps": 400}}
    sweep_id = submit(store, base)
    drive(scheduler, all_done(store, sweep_id))
    (t,) = trials(store, sweep_id)
    assert t.status is TrialStatus.PRUNED
    assert t.stop_reason is not None and t.stop_reason.startswith("diverged")
    steps, losses = series(store, t.id, "train_loss")
    assert not math.isfinite(losses[-1])
    assert all(math.isfinite(v) for v in losses[:-1])
    assert steps[-1] < 399  # it did not burn its budget


def test_cancelling_a_running_trial_stops_it_within_seconds(
    store: Store, scheduler: Scheduler
) -> None:
    sweep_id = submit(store, {**DIGITS, "budget": {"max_steps": 1_000_000}})
    (t,) = trials(store, sweep_id)
    drive(scheduler, lambda: bool(store.metrics.names(t.id)))
    requested = time.monotonic()
    store.sweeps.cancel_trial(t.project_id, t.id)
    drive(scheduler, all_done(store, sweep_id), timeout=30)
    assert time.monotonic() - requested < 10
    (t,) = trials(store, sweep_id)
    assert t.status is TrialStatus.CANCELLED


def test_a_killed_worker_resumes_from_its_checkpoint_without_gaps_or_duplicates(
    store: Store, scheduler: Scheduler
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
        steps, _ = series(store, t.id, "train_loss")
        return bool(steps) and steps[-1] >= 150

    drive(scheduler, past_first_checkpoint)
    running = store.trial_states.get(t.id)
    assert running is not None and running.worker is not None and running.attempt == 0
    os.kill(int(running.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    drive(scheduler, all_done(store, sweep_id))
    (t,) = trials(store, sweep_id)
    assert t.status is TrialStatus.SUCCEEDED
    assert t.attempt == 1
    steps, _ = series(store, t.id, "train_loss")
    assert steps == list(range(4000))
    with store.db.session() as s:
        stored = s.execute(
            text("SELECT count(*) FROM metric_points WHERE trial_id = :t AND name = 'train_loss'"),
            {"t": t.id},
        ).scalar_one()
    assert stored == 4000
    events = [e.status for e in store.sweeps.trial_events(t.project_id, t.id)]
    assert events.count(TrialStatus.RUNNING) == 2 and TrialStatus.QUEUED in events[1:]
