"""Lazy sweeps (random, bayes) through the scheduler with the fake launcher: trials are
asked for one at a time as room frees, max_trials and max_concurrent hold exactly (also
with two schedulers on one PostgreSQL database and across a restart), and what is asked
stays in the space's support."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.domain.records import PastTrial, SweepStatus, Trial, TrialStatus
from services.domain.search_state import AskedTrial, LazySweep
from services.scheduling.launcher import RunOutcome
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store, open_store
from services.sweeps import lazy_trials
from services.sweeps.submit import submit_sweep
from tests.integration.fakes import FakeLauncher, Ledger
from tests.support.rows import backdate_heartbeat
from tests.support.scheduling import drive_together, max_overlap, tick_until

LR = {"distribution": "log_uniform", "low": 1e-5, "high": 1.0}


def submit(store: Store, space: dict[str, Any], **options: Any) -> tuple[int, int]:
    project = store.projects.get_by_name("p") or store.projects.create("p")
    spec = SweepSpec.model_validate({"base": {"task": "digits"}, "space": space, **options})
    return project.id, submit_sweep(store, Settings(), project.id, spec).id


def trials(store: Store, project_id: int, sweep_id: int) -> list[Trial]:
    return store.trials.list(project_id, sweep_id, limit=1000, offset=0).items


def make(store: Store, launcher: FakeLauncher, tmp_path: Path, name: str = "a") -> Scheduler:
    return Scheduler(
        store,
        launcher,
        database_url=store.db.url,
        checkpoint_root=tmp_path / "checkpoints",
        scheduler_id=name,
    )


def started(
    store: Store, tmp_path: Path, method: str, max_trials: int, max_concurrent: int
) -> tuple[int, int, FakeLauncher, Scheduler]:
    """A lazy sweep over lr and a scheduler that ticked once (trials of its own choosing)."""
    project_id, sweep_id = submit(
        store,
        {"optimizer.lr": LR},
        method=method,
        max_trials=max_trials,
        max_concurrent=max_concurrent,
    )
    launcher = FakeLauncher(cpus=8)
    scheduler = make(store, launcher, tmp_path)
    scheduler.tick()
    return project_id, sweep_id, launcher, scheduler


def finished(store: Store, project_id: int, sweep_id: int) -> Callable[[], bool]:
    return lambda: store.sweeps.get(project_id, sweep_id).status is SweepStatus.FINISHED


def test_random_samples_stay_in_support(store: Store, tmp_path: Path) -> None:
    space = {
        "optimizer.lr": LR,
        "batch_size": {"distribution": "int_uniform", "low": 8, "high": 64},
        "regularization.l2": {
            "distribution": "q_log_uniform",
            "low": 1e-6,
            "high": 1e-2,
            "q": 1e-6,
        },
        "optimizer": [{"name": "sgd", "lr": 0.1}, {"name": "adam", "lr": 0.01}],
    }
    project_id, sweep_id = submit(store, space, method="random", max_trials=60, seed=3)
    launcher = FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED)
    scheduler = make(store, launcher, tmp_path)
    tick_until(scheduler.tick, finished(store, project_id, sweep_id))

    done = trials(store, project_id, sweep_id)
    assert [t.number for t in done] == list(range(60))
    assert all(t.status is TrialStatus.SUCCEEDED for t in done)
    lrs = [t.params["optimizer.lr"] for t in done]
    # The stored spec is the trial that ran: its optimizer.lr is the drawn one.
    assert [t.spec["optimizer"]["lr"] for t in done] == lrs
    assert all(1e-5 <= lr <= 1.0 for lr in lrs)
    # Log-uniform: each of the 5 decades holds about a fifth of the draws.
    decades = Counter(min(int(-math.log10(lr)), 4) for lr in lrs)
    assert all(5 <= decades[d] <= 20 for d in range(5)), decades
    assert all(8 <= t.params["batch_size"] <= 64 for t in done)
    assert all(isinstance(t.params["batch_size"], int) for t in done)
    decays = [t.params["regularization.l2"] for t in done]
    assert all(1e-6 - 1e-12 <= d <= 1e-2 + 1e-12 for d in decays)
    assert {t.params["optimizer"]["name"] for t in done} == {"sgd", "adam"}


def test_max_concurrent_and_max_trials_hold_exactly(store: Store, tmp_path: Path) -> None:
    project_id, sweep_id, launcher, scheduler = started(store, tmp_path, "bayes", 7, 3)
    # Asked only as room frees: three running, none waiting in the queue.
    assert len(launcher.in_flight) == 3
    assert Counter(t.status for t in trials(store, project_id, sweep_id)) == {
        TrialStatus.RUNNING: 3
    }
    scheduler.tick()
    assert len(trials(store, project_id, sweep_id)) == 3  # no room, no new trial
    while launcher.in_flight:
        launcher.end(min(launcher.in_flight), RunOutcome.SUCCEEDED)
        scheduler.tick()
        count = len(trials(store, project_id, sweep_id))
        assert len(launcher.in_flight) == min(3, 7 - (count - len(launcher.in_flight)))
    done = trials(store, project_id, sweep_id)
    assert len(done) == 7 and launcher.max_in_flight == 3
    assert all(t.status is TrialStatus.SUCCEEDED for t in done)
    assert store.sweeps.get(project_id, sweep_id).status is SweepStatus.FINISHED


def test_a_lazy_sweep_between_two_trials_is_not_finished(store: Store, tmp_path: Path) -> None:
    project_id, sweep_id, launcher, scheduler = started(store, tmp_path, "random", 2, 1)
    (first,) = launcher.in_flight
    launcher.end(first, RunOutcome.SUCCEEDED)
    launcher.poll()  # the report is lost to this scheduler; its trial stays running
    store.trial_states.finish(first, 0, TrialStatus.SUCCEEDED)
    # Every trial is terminal, but one more is to be asked for.
    assert store.trial_states.finish_sweeps() == []
    scheduler.tick()
    assert len(trials(store, project_id, sweep_id)) == 2


def test_a_params_draw_that_makes_an_invalid_trial_fails_at_birth(
    store: Store, tmp_path: Path
) -> None:
    # Submission through the API refuses this space (sweep_checks); a sweep stored without
    # those checks (an older server's) still fails only the trials it cannot build.
    space = {"optimizer.name": ["sgd", "adam"], "optimizer.lr": [0.1, -1.0]}
    base = {"task": "digits", "optimizer": {"name": "sgd", "lr": 0.1}}
    project = store.projects.create("p")
    # Half the draws fail: the failure policy (test_failure_stop.py) would end the sweep
    # early, and this test is about each failed birth.
    spec = SweepSpec.model_validate(
        {
            "base": base,
            "space": space,
            "method": "random",
            "max_trials": 12,
            "seed": 1,
            "failure_policy": None,
        }
    )
    sweep_id = submit_sweep(store, Settings(), project.id, spec).id
    scheduler = make(store, FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED), tmp_path)
    tick_until(scheduler.tick, finished(store, project.id, sweep_id))
    done = trials(store, project.id, sweep_id)
    assert len(done) == 12
    failed = [t for t in done if t.status is TrialStatus.FAILED]
    assert failed and len(failed) < 12
    for trial in failed:
        assert trial.params["optimizer.lr"] == -1.0
        assert trial.error is not None and "give an invalid trial" in trial.error
        assert "optimizer.lr" in trial.error
        assert trial.started_at is None  # never launched


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_a_sampled_sweep_switching_optimizers_builds_every_trial(
    client: TestClient, store: Store, tmp_path: Path, method: str
) -> None:
    # Submitted through the API: its checks pass, and every trial drawn builds.
    momentum = {"distribution": "uniform", "low": 0.0, "high": 0.99}
    spec = {
        "base": {"task": "digits", "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.5}},
        "method": method,
        "space": {"optimizer.name": ["sgd", "adam"], "optimizer.momentum": momentum},
        "metric": {"name": "val_loss", "goal": "minimize"},
        "max_trials": 12,
    }
    response = client.post("/sweeps", json=spec)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["warnings"] == [
        "space['optimizer.momentum']: only optimizer sgd has momentum; the trials with adam "
        "run without it"
    ]
    url = f"/sweeps/{body['id']}"
    scheduler = make(store, FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED), tmp_path)
    tick_until(scheduler.tick, lambda: client.get(url).json()["status"] == "finished")
    done = client.get(f"{url}/trials", params={"limit": 100}).json()["items"]
    assert [t["status"] for t in done] == ["succeeded"] * 12  # none failed at birth
    assert {t["params"]["optimizer.name"] for t in done} == {"sgd", "adam"}
    for trial in done:
        optimizer = trial["spec"]["optimizer"]
        assert optimizer["name"] == trial["params"]["optimizer.name"]
        if optimizer["name"] == "adam":  # neither the base's momentum nor the drawn one
            assert "momentum" not in optimizer and optimizer["lr"] == 0.1
        else:
            assert optimizer["momentum"] == trial["params"]["optimizer.momentum"]


def test_bayes_history_has_the_metric_and_every_live_trial(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id, sweep_id, launcher, scheduler = started(store, tmp_path, "bayes", 4, 2)
    first, second = sorted(launcher.in_flight)
    store.metrics.write(
        project_id, first, [("val_loss", 9, 0.8, None), ("val_loss", 19, 0.5, None)]
    )
    store.metrics.write(project_id, second, [("val_loss", 9, math.nan, None)])
    launcher.end(first, RunOutcome.SUCCEEDED)
    # What the search is given when the scheduler asks it for the third trial.
    seen: list[list[PastTrial]] = []
    ask = lazy_trials._make

    def asking(sweep: LazySweep, history: Callable[[], list[PastTrial]]) -> AskedTrial | None:
        seen.append(history())
        return ask(sweep, history)

    monkeypatch.setattr(lazy_trials, "_make", asking)
    scheduler.tick()
    (past,) = seen
    history = {t.trial_id: t for t in past}
    assert len(history) == 2 and len(trials(store, project_id, sweep_id)) == 3
    assert history[first].status is TrialStatus.SUCCEEDED
    assert history[first].values == (0.8, 0.5) and history[first].steps == (9, 19)
    assert history[second].status is TrialStatus.RUNNING
    assert math.isnan(history[second].values[0])  # NaN is kept (SQLite stores NULL)
    assert all("optimizer.lr" in t.params for t in history.values())


def test_restart_mid_sweep_neither_overshoots_nor_loses_a_trial(
    store: Store, tmp_path: Path
) -> None:
    project_id, sweep_id, _, _ = started(store, tmp_path, "random", 6, 3)  # dies soon
    running = trials(store, project_id, sweep_id)
    assert [t.status for t in running] == [TrialStatus.RUNNING] * 3
    # The first scheduler dies with its three trials: a new one takes over once their
    # leases run out.
    for trial in running:
        backdate_heartbeat(store, trial.id, 3600)
    after = FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED)
    successor = make(store, after, tmp_path, name="after")
    successor.tick()
    # The three came back (attempt 1) before any new trial was asked for.
    assert sorted((a.trial_id, a.attempt) for a in after.launches) == [(t.id, 1) for t in running]
    assert len(trials(store, project_id, sweep_id)) == 3
    tick_until(successor.tick, finished(store, project_id, sweep_id))
    done = trials(store, project_id, sweep_id)
    assert [t.number for t in done] == list(range(6))
    assert all(t.status is TrialStatus.SUCCEEDED for t in done)
    # The same params as before the restart: a trial's draw depends on its number alone.
    assert [t.params for t in done[:3]] == [t.params for t in running]


# -- two schedulers, one PostgreSQL database ----------------------------------------------
def test_two_schedulers_ask_exactly_max_trials(fresh_pg_url: str, tmp_path: Path) -> None:
    store = open_store(fresh_pg_url)
    try:
        two_schedulers_ask_exactly_max_trials(store, tmp_path)
    finally:
        store.close()


def two_schedulers_ask_exactly_max_trials(store: Store, tmp_path: Path) -> None:
    sweeps = [
        submit(store, {"optimizer.lr": LR}, method=method, max_trials=15, max_concurrent=3)
        for method in ("random", "bayes", "random")
    ]
    ledger = Ledger()
    schedulers = [
        make(
            store,
            FakeLauncher(cpus=4, name=n, auto=RunOutcome.SUCCEEDED, ledger=ledger),
            tmp_path,
            name=n,
        )
        for n in ("sched-1", "sched-2")
    ]

    def all_finished() -> bool:
        return all(finished(store, p, s)() for p, s in sweeps)

    assert drive_together(schedulers, all_finished) == []
    assert {who for _, _, who in ledger.launches} == {"sched-1", "sched-2"}
    assert all(attempt == 0 for _, attempt, _ in ledger.launches)
    for project_id, sweep_id in sweeps:
        done_trials = trials(store, project_id, sweep_id)
        assert [t.number for t in done_trials] == list(range(15))
        assert all(t.status is TrialStatus.SUCCEEDED for t in done_trials)
        intervals = []
        for trial in done_trials:
            events = store.trials.events(project_id, trial.id)
            assert [e.status for e in events] == [
                TrialStatus.QUEUED,
                TrialStatus.RUNNING,
                TrialStatus.SUCCEEDED,
            ]
            intervals.append((events[1].at, events[2].at))
        assert max_overlap(intervals) <= 3
    launched = [trial for trial, _, _ in ledger.launches]
    assert len(launched) == len(set(launched)) == 45


# -- W&B sweep files -------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["random", "bayes"])
def test_wandb_sampled_files_run(
    client: TestClient, store: Store, tmp_path: Path, method: str
) -> None:
    text = f"""
method: {method}
run_cap: 5
metric: {{name: val_loss, goal: minimize}}
parameters:
  learning_rate: {{distribution: log_uniform, min: -9.2, max: -2.3}}
  batch_size: {{values: [16, 32]}}
"""
    response = client.post("/sweeps", content=text, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 201, response.text
    body = response.json()
    scheduler = make(store, FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED), tmp_path)
    tick_until(scheduler.tick, finished(store, body["project_id"], body["id"]))
    done = trials(store, body["project_id"], body["id"])
    assert len(done) == 5
    # W&B's log_uniform bounds are natural-log exponents.
    assert all(math.exp(-9.2) <= t.spec["optimizer"]["lr"] <= math.exp(-2.3) for t in done)
    assert all(t.spec["batch_size"] in (16, 32) for t in done)


def test_batch_size_sweep_with_lr_scaling_records_the_effective_lr(
    store: Store, tmp_path: Path
) -> None:
    from services.analyzer.sweep_inputs import config_of

    project = store.projects.create("p")
    spec = SweepSpec.model_validate(
        {
            "base": {"task": "digits", "lr_scaling": {"rule": "sqrt", "base_batch_size": 64}},
            "space": {"optimizer.lr": LR, "batch_size": [16, 64, 256]},
            "method": "random",
            "max_trials": 9,
        }
    )
    sweep_id = submit_sweep(store, Settings(), project.id, spec).id
    scheduler = make(store, FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED), tmp_path)
    tick_until(scheduler.tick, finished(store, project.id, sweep_id))
    for trial in trials(store, project.id, sweep_id):
        lr, batch = trial.params["optimizer.lr"], trial.params["batch_size"]
        # The stored spec keeps the drawn lr and the rule; the lr the trial trains with
        # (and the sweep analysis reports per batch size) is the scaled one.
        assert trial.spec["lr_scaling"] == {"rule": "sqrt", "base_batch_size": 64}
        assert config_of(trial.spec).lr == pytest.approx(lr * math.sqrt(batch / 64))


def test_a_lazy_sweep_whose_spec_does_not_read_blocks_no_other(
    store: Store, tmp_path: Path
) -> None:
    from services.domain.submissions import NewSweep

    # The broken one first: the scheduler asks sweeps in id order.
    broken = store.sweeps.create(
        store.projects.create("p").id,
        NewSweep("broken", "random", {"base": {"task": "gone"}}, "val_loss", "minimize", 5, 2),
        [],
    )
    project_id, sweep_id = submit(store, {"optimizer.lr": LR}, method="random", max_trials=2)
    scheduler = make(store, FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED), tmp_path)
    tick_until(scheduler.tick, finished(store, project_id, sweep_id))
    assert trials(store, project_id, broken.id) == []
