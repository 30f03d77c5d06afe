"""Sweeps whose trials keep failing stop themselves (failure_policy), on both backends:
the reason with the last error, queued trials cancelled, lazy sweeps asking for no more,
running trials left to end, the policy turned off, and the reason in GET /sweeps/{id}."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from services.domain.records import SweepStatus, Trial, TrialStatus
from services.scheduling.launcher import RunOutcome
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.store.sweep_failures_repo import STOPPED_WITH_SWEEP
from services.sweeps.submit import submit_sweep
from tests.integration.fakes import FakeLauncher
from tests.support.scheduling import tick_until

BASE = {"task": "digits", "budget": {"max_steps": 10}}
SEEDS = {"seed": list(range(20))}
LR = {"distribution": "log_uniform", "low": 1e-4, "high": 1.0}


def submit(store: Store, **options: Any) -> tuple[int, int]:
    project = store.projects.get_by_name("p") or store.projects.create("p")
    spec = SweepSpec.model_validate({"base": BASE, "space": SEEDS, **options})
    return project.id, submit_sweep(store, Settings(), project.id, spec).id


def scheduler_for(store: Store, launcher: FakeLauncher, tmp_path: Path) -> Scheduler:
    return Scheduler(
        store, launcher, database_url=store.db.url, checkpoint_root=tmp_path / "checkpoints"
    )


def trials(store: Store, project_id: int, sweep_id: int) -> list[Trial]:
    return store.trials.list(project_id, sweep_id, limit=1000, offset=0).items


def ended(store: Store, project_id: int, sweep_id: int) -> Any:
    return lambda: store.sweeps.get(project_id, sweep_id).status.is_terminal


def fail_all(launcher: FakeLauncher) -> None:
    for trial_id in sorted(launcher.in_flight):
        launcher.end(trial_id, RunOutcome.FAILED, error=f"ValueError: no data for trial {trial_id}")


def test_the_first_five_failing_stop_a_grid_and_cancel_its_queue(
    store: Store, tmp_path: Path
) -> None:
    project_id, sweep_id = submit(store, max_concurrent=1)
    launcher = FakeLauncher(cpus=8)
    scheduler = scheduler_for(store, launcher, tmp_path)

    def step() -> None:
        scheduler.tick()
        fail_all(launcher)

    tick_until(step, ended(store, project_id, sweep_id), limit=50)
    sweep = store.sweeps.get(project_id, sweep_id)
    assert sweep.status is SweepStatus.FAILED and sweep.finished_at is not None
    last = max(t.id for t in trials(store, project_id, sweep_id) if t.status is TrialStatus.FAILED)
    assert sweep.status_reason == (
        f"stopped: the first 5 trials all failed; last error: ValueError: no data for trial {last}"
    )
    assert len(launcher.launches) == 5  # not one launch more
    assert sweep.trial_counts == {"failed": 5, "cancelled": 15}
    cancelled = [
        t for t in trials(store, project_id, sweep_id) if t.status is TrialStatus.CANCELLED
    ]
    assert {t.stop_reason for t in cancelled} == {STOPPED_WITH_SWEEP}
    assert store.trials.events(project_id, cancelled[0].id)[-1].detail == STOPPED_WITH_SWEEP
    for _ in range(3):
        scheduler.tick()
    assert len(launcher.launches) == 5


def test_a_lazy_sweep_that_keeps_failing_asks_for_no_more_trials(
    store: Store, tmp_path: Path
) -> None:
    project = store.projects.create("p")
    spec = SweepSpec.model_validate(
        {"base": BASE, "space": {"optimizer.lr": LR}, "method": "random", "max_concurrent": 2}
    )
    sweep_id = submit_sweep(store, Settings(), project.id, spec).id
    launcher = FakeLauncher(cpus=8, auto=RunOutcome.FAILED)
    scheduler = scheduler_for(store, launcher, tmp_path)
    tick_until(scheduler.tick, ended(store, project.id, sweep_id), limit=50)
    sweep = store.sweeps.get(project.id, sweep_id)
    assert sweep.status is SweepStatus.FAILED
    assert sweep.status_reason is not None and "trials all failed" in sweep.status_reason
    asked = len(trials(store, project.id, sweep_id))
    assert 5 <= asked <= 6  # two ran at once: one more may have been running
    for _ in range(5):
        scheduler.tick()
    assert len(trials(store, project.id, sweep_id)) == asked  # of 10,000 allowed


def test_a_failure_rate_over_the_limit_stops_after_min_finished(
    store: Store, tmp_path: Path
) -> None:
    # Two fail, one succeeds, ...: never five in a row, but two thirds fail.
    project_id, sweep_id = submit(
        store,
        max_concurrent=1,
        failure_policy={"max_consecutive_failures": 5, "max_failure_rate": 0.6, "min_finished": 9},
    )
    launcher = FakeLauncher(cpus=8)
    scheduler = scheduler_for(store, launcher, tmp_path)
    outcomes = 0

    def step() -> None:
        nonlocal outcomes
        scheduler.tick()
        for trial_id in sorted(launcher.in_flight):
            outcomes += 1
            outcome = RunOutcome.SUCCEEDED if outcomes % 3 == 0 else RunOutcome.FAILED
            launcher.end(trial_id, outcome, error="RuntimeError: flaky")

    tick_until(step, ended(store, project_id, sweep_id), limit=50)
    sweep = store.sweeps.get(project_id, sweep_id)
    assert sweep.status is SweepStatus.FAILED
    # The 9th trial succeeded (6 of 9 failed, judged at the next failure); the 10th failed:
    # 7 of 10 is over 0.6, and nothing after it ran.
    assert sweep.status_reason == (
        "stopped: 7 of its 10 ended trials failed, more than failure_policy.max_failure_rate "
        "(0.6); last error: RuntimeError: flaky"
    )
    counts = Counter(t.status for t in trials(store, project_id, sweep_id))
    assert counts == {TrialStatus.FAILED: 7, TrialStatus.SUCCEEDED: 3, TrialStatus.CANCELLED: 10}


def test_running_trials_end_on_their_own_after_the_stop(store: Store, tmp_path: Path) -> None:
    project_id, sweep_id = submit(store, max_concurrent=6)
    launcher = FakeLauncher(cpus=8)
    scheduler = scheduler_for(store, launcher, tmp_path)
    scheduler.tick()
    survivor = max(launcher.in_flight)
    for trial_id in sorted(launcher.in_flight)[:5]:
        launcher.end(trial_id, RunOutcome.FAILED, error="OSError: disk full")
    result = scheduler.tick()
    assert result.sweeps_stopped == 1 and result.launched == 0
    assert store.sweeps.get(project_id, sweep_id).status is SweepStatus.FAILED
    assert store.trial_states.get(survivor).status is TrialStatus.RUNNING
    launcher.end(survivor, RunOutcome.SUCCEEDED)
    scheduler.tick()
    sweep = store.sweeps.get(project_id, sweep_id)
    assert store.trial_states.get(survivor).status is TrialStatus.SUCCEEDED
    assert sweep.status is SweepStatus.FAILED  # a late success does not revive it
    assert sweep.trial_counts == {"failed": 5, "succeeded": 1, "cancelled": 14}


def test_with_the_policy_off_every_trial_runs_and_the_sweep_finishes(
    store: Store, tmp_path: Path
) -> None:
    project_id, sweep_id = submit(store, max_concurrent=4, failure_policy=None)
    launcher = FakeLauncher(cpus=8, auto=RunOutcome.FAILED)
    scheduler = scheduler_for(store, launcher, tmp_path)
    tick_until(scheduler.tick, ended(store, project_id, sweep_id), limit=50)
    sweep = store.sweeps.get(project_id, sweep_id)
    assert sweep.status is SweepStatus.FINISHED and sweep.status_reason is None
    assert sweep.trial_counts == {"failed": 20}


def test_a_cancelled_sweep_is_not_stopped_again(store: Store, tmp_path: Path) -> None:
    project_id, sweep_id = submit(store, max_concurrent=5)
    launcher = FakeLauncher(cpus=8)
    scheduler = scheduler_for(store, launcher, tmp_path)
    scheduler.tick()
    store.sweeps.cancel(project_id, sweep_id)
    fail_all(launcher)
    assert scheduler.tick().sweeps_stopped == 0
    sweep = store.sweeps.get(project_id, sweep_id)
    assert sweep.status is SweepStatus.CANCELLED and sweep.status_reason is None


def test_the_reason_is_in_the_api_and_the_status_filter_knows_failed(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    body = {"base": BASE, "space": SEEDS, "max_concurrent": 5}
    created = client.post("/sweeps", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status_reason"] is None
    launcher = FakeLauncher(cpus=8, auto=RunOutcome.FAILED)
    scheduler = scheduler_for(store, launcher, tmp_path)
    sweep_id = created.json()["id"]

    def stopped() -> bool:
        return bool(client.get(f"/sweeps/{sweep_id}").json()["status"] == "failed")

    tick_until(scheduler.tick, stopped, limit=20)
    got = client.get(f"/sweeps/{sweep_id}").json()
    assert got["status_reason"].startswith("stopped: the first 5 trials all failed; last error:")
    listed = client.get("/sweeps", params={"status": "failed"}).json()
    assert [s["id"] for s in listed["items"]] == [sweep_id]
