"""External runs (POST /runs): logged from elsewhere, analysed like any trial, never
touched by the scheduler, and given up by the housekeeping when their script goes silent."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from services.domain.errors import Conflict
from services.domain.records import TrialStatus
from services.domain.submissions import NewRun, NewSweep, NewTrial
from services.scheduling.housekeeping import RUNS_CHECK_SECONDS, Housekeeping
from services.scheduling.launcher import RunOutcome
from services.scheduling.scheduler import Scheduler
from services.store import Store
from services.store.tables import TrialRow, utcnow
from services.tracking.external_runs import silence_reason
from tests.integration.fakes import FakeClock, FakeLauncher
from tests.support.api import error_fields, log, start

# -- the run's life ------------------------------------------------------------------------


def test_a_run_starts_running_in_a_sweep_of_its_own(client: TestClient) -> None:
    run = start(
        client,
        config={"lr": 0.01, "optimizer": "adamw", "nested": {"layers": [64, 64]}},
        tags=["baseline", "laptop", "baseline"],
        metric={"name": "val_accuracy", "goal": "maximize"},
    )
    assert run["status"] == "running" and run["name"] == "laptop-run"
    assert run["config"] == {"lr": 0.01, "optimizer": "adamw", "nested": {"layers": [64, 64]}}
    assert run["tags"] == ["baseline", "laptop"]
    assert run["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert run["started_at"] is not None and run["finished_at"] is None

    trial = client.get(f"/trials/{run['id']}").json()
    assert trial["status"] == "running" and trial["sweep_id"] == run["sweep_id"]
    sweep = client.get(f"/sweeps/{run['sweep_id']}").json()
    assert sweep["method"] == "external" and sweep["trial_counts"] == {"running": 1}
    assert client.get(f"/runs/{run['id']}").json() == run
    events = client.get(f"/trials/{run['id']}/events").json()
    assert [e["status"] for e in events] == ["running"]


def test_runs_accept_any_metric_names_and_finish_with_their_analysis(
    client: TestClient,
) -> None:
    run = start(client, config={"learning_rate": 0.1, "batch_size": 32})
    steps = 600
    log(client, run["id"], "train_loss", [2.3 * math.exp(-s / 80) + 0.05 for s in range(steps)])
    log(client, run["id"], "lr", [0.1] * steps)
    log(client, run["id"], "my/custom_metric", [float(s % 7) for s in range(steps)])
    names = client.get(f"/trials/{run['id']}/metric-names").json()
    assert names == ["lr", "my/custom_metric", "train_loss"]

    live = client.get(f"/trials/{run['id']}/analysis").json()
    assert live["status"] == "running" and live["provisional"] is True

    response = client.post(f"/runs/{run['id']}/finish")
    assert response.status_code == 200, response.text
    analysis = response.json()
    assert analysis["trial_id"] == run["id"] and analysis["status"] == "succeeded"
    assert analysis["provisional"] is False and analysis["kinds"] == ["healthy"]

    done = client.get(f"/runs/{run['id']}").json()
    assert done["status"] == "succeeded" and done["last_step"] == steps - 1
    assert done["finished_at"] is not None
    assert client.get(f"/sweeps/{run['sweep_id']}").json()["status"] == "finished"
    events = client.get(f"/trials/{run['id']}/events").json()
    assert [e["status"] for e in events] == ["running", "succeeded"]


def test_a_diverging_run_is_diagnosed_with_a_lower_lr(client: TestClient) -> None:
    run = start(client, config={"lr": 1.0, "optimizer": "sgd"})
    falling = [2.3 * math.exp(-s / 60) + 0.2 for s in range(300)]
    exploding = [falling[-1] * math.exp((s - 299) / 15) for s in range(300, 420)]
    log(client, run["id"], "train_loss", [*falling, *exploding, math.inf])
    log(client, run["id"], "lr", [1.0] * 421)
    analysis = client.post(f"/runs/{run['id']}/finish", json={"status": "failed"}).json()
    assert analysis["status"] == "failed"
    assert analysis["kinds"][0] == "divergence"
    assert analysis["findings"][0]["changes"]["optimizer.lr"] < 1.0


def test_finishing_again_is_harmless_but_a_different_status_conflicts(
    client: TestClient,
) -> None:
    run = start(client)
    log(client, run["id"], "train_loss", [1.0, 0.9, 0.8])
    first = client.post(f"/runs/{run['id']}/finish", json={"status": "failed"})
    assert first.status_code == 200 and first.json()["status"] == "failed"
    assert client.post(f"/runs/{run['id']}/finish", json={"status": "failed"}).status_code == 200
    assert client.post(f"/runs/{run['id']}/finish").status_code == 200  # a bare retry
    clash = client.post(f"/runs/{run['id']}/finish", json={"status": "succeeded"})
    assert clash.status_code == 409
    assert "already finished as 'failed'" in error_fields(clash)["status"]
    assert client.get(f"/runs/{run['id']}").json()["last_step"] == 2


def test_a_cancelled_run_finishes_cancelled(client: TestClient) -> None:
    run = start(client)
    assert client.post(f"/trials/{run['id']}/cancel").json()["cancel_requested"] is True
    assert client.get(f"/runs/{run['id']}").json()["cancel_requested"] is True
    assert client.post(f"/runs/{run['id']}/finish").json()["status"] == "cancelled"


def test_list_runs_newest_first_with_a_status_filter(client: TestClient) -> None:
    ids = [start(client, name=f"r{i}")["id"] for i in range(3)]
    client.post("/jobs", json={"task": "digits"})  # a trained trial is not a run
    client.post(f"/runs/{ids[0]}/finish")
    page = client.get("/runs", params={"limit": 2}).json()
    assert [r["id"] for r in page["items"]] == [ids[2], ids[1]]
    assert page["total"] == 3 and page["next_offset"] == 2
    running = client.get("/runs", params={"status": "running"}).json()
    assert [r["name"] for r in running["items"]] == ["r2", "r1"]


# -- bad input and other projects -----------------------------------------------------------


def test_bad_runs_are_422_naming_the_field(client: TestClient) -> None:
    cases: list[tuple[Any, str, str]] = [
        ({"config": [1, 2]}, "config", "dictionary"),
        ({"name": ""}, "name", "at least 1 character"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"tags": "one"}, "tags", "list"),
        ({"metric": {"name": "val_loss", "goal": "lowest"}}, "metric.goal", "minimize"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"config": {"blob": "x" * 70_000}}, "config", "the limit is 65536"),
    ]
    for body, field, message in cases:
        response = client.post("/runs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert message in error_fields(response).get(field, ""), (body, response.json())
    non_finite = client.post(
        "/runs", content=b'{"config": {"lr": NaN}}', headers={"content-type": "application/json"}
    )
    assert non_finite.status_code == 422
    assert "finite" in error_fields(non_finite)["config"]
    assert client.get("/runs").json()["total"] == 0


def test_bad_finish_bodies_are_422(client: TestClient) -> None:
    run = start(client)
    for body, field in [({"status": "running"}, "status"), ({"state": "failed"}, "state")]:
        response = client.post(f"/runs/{run['id']}/finish", json=body)
        assert response.status_code == 422 and field in error_fields(response), response.text
    assert client.get(f"/runs/{run['id']}").json()["status"] == "running"


def test_runs_are_scoped_to_the_project(client: TestClient, other_client: TestClient) -> None:
    run = start(client)
    assert other_client.get(f"/runs/{run['id']}").status_code == 404
    assert other_client.post(f"/runs/{run['id']}/finish").status_code == 404
    point = {"points": [{"name": "train_loss", "step": 0, "value": 1.0}]}
    assert other_client.post(f"/trials/{run['id']}/metrics", json=point).status_code == 404
    assert other_client.get("/runs").json()["total"] == 0
    assert client.get(f"/runs/{run['id']}").status_code == 200


def test_a_trained_trial_is_not_a_run(client: TestClient) -> None:
    sweep = client.post("/jobs", json={"task": "digits"}).json()
    trial = client.get(f"/sweeps/{sweep['id']}/trials").json()["items"][0]["id"]
    missing = client.get(f"/runs/{trial}")
    assert missing.status_code == 404 and f"run {trial} not found" in error_fields(missing)[""]
    assert client.post(f"/runs/{trial}/finish").status_code == 404
    assert client.get(f"/trials/{trial}").json()["status"] == "queued"


# -- the scheduler leaves runs alone ------------------------------------------------------------


def _trained_sweep(store: Store, project_id: int) -> int:
    sweep = store.sweeps.create(
        project_id,
        NewSweep(
            name="grid",
            method="grid",
            spec={},
            metric_name="val_loss",
            metric_goal="minimize",
            max_trials=None,
            max_concurrent=4,
        ),
        [NewTrial(params={}, spec={"task": "digits"}, max_restarts=2)],
    )
    return sweep.id


def _new_run(store: Store, project_id: int) -> int:
    run = store.runs.create(project_id, NewRun("ext", {}, [], "val_loss", "minimize"))
    return run.trial.id


def test_claims_and_stale_scans_skip_external_runs(store: Store) -> None:
    project = store.projects.create("p")
    run_id = _new_run(store, project.id)
    _trained_sweep(store, project.id)
    states = store.trial_states
    claimed = states.claim_next("me", lambda t: True)
    assert claimed is not None and claimed.kind == "trained"
    assert states.claim_next("me", lambda t: True) is None
    # A day without heartbeats: the trained trial is stale, the run (no worker) is not.
    stale = states.stale_running(30, now=utcnow() + timedelta(days=1))
    assert [t.id for t in stale] == [claimed.id]
    assert store.trials.get(project.id, run_id).status is TrialStatus.RUNNING


def test_the_scheduler_never_launches_requeues_or_ends_a_run(store: Store, tmp_path: Path) -> None:
    project = store.projects.create("p")
    run_id = _new_run(store, project.id)
    launcher = FakeLauncher(cpus=8, auto=RunOutcome.SUCCEEDED)
    scheduler = Scheduler(
        store,
        launcher,
        database_url=store.db.url,
        checkpoint_root=tmp_path,
        lease_seconds=0.001,  # every running trial without a fresh heartbeat is stale
        clock=FakeClock(),
    )
    for _ in range(3):
        scheduler.tick()
    assert launcher.launches == []
    run = store.runs.get(project.id, run_id)
    assert run.trial.status is TrialStatus.RUNNING and run.trial.attempt == 0
    assert store.sweeps.get(project.id, run.trial.sweep_id).status.value == "running"
    events = store.trials.events(project.id, run_id)
    assert [e.status for e in events] == [TrialStatus.RUNNING]


# -- runs whose script went silent ------------------------------------------------------------


def _silent_for(store: Store, run_id: int, seconds: float) -> None:
    """Move the run's start and last heartbeat `seconds` into the past."""
    then = utcnow() - timedelta(seconds=seconds)
    with store.db.session() as s:
        s.execute(
            update(TrialRow).where(TrialRow.id == run_id).values(started_at=then, heartbeat_at=None)
        )


def test_a_heartbeat_keeps_a_run_alive_and_says_its_status(
    client: TestClient, other_client: TestClient
) -> None:
    run = start(client)
    beat = client.post(f"/runs/{run['id']}/heartbeat")
    assert beat.status_code == 200 and beat.json()["status"] == "running"
    assert other_client.post(f"/runs/{run['id']}/heartbeat").status_code == 404
    assert client.post("/runs/999999/heartbeat").status_code == 404
    client.post(f"/runs/{run['id']}/finish")
    # A finished run's heartbeat changes nothing and says so.
    assert client.post(f"/runs/{run['id']}/heartbeat").json()["status"] == "succeeded"


def test_a_metric_batch_is_a_sign_of_life(client: TestClient, store: Store) -> None:
    run = start(client)
    _silent_for(store, run["id"], 700)
    assert [r for _, r in store.runs.silent(600)] == [run["id"]]
    log(client, run["id"], "train_loss", [1.0, 0.9])
    assert store.runs.silent(600) == ()


def test_silent_runs_are_given_up_as_failed_and_live_ones_are_not(store: Store) -> None:
    project = store.projects.create("p")
    silent, beating, fresh = (_new_run(store, project.id) for _ in range(3))
    for run_id in (silent, beating):
        _silent_for(store, run_id, 700)
    assert store.runs.touch(project.id, beating)  # a heartbeat (or a metric batch) just came
    clock = FakeClock()
    housekeeping = Housekeeping(store, run_silence_seconds=600, clock=clock)
    assert housekeeping.tick().runs_given_up == 1
    run = store.runs.get(project.id, silent).trial
    assert run.status is TrialStatus.FAILED and run.finished_at is not None
    assert run.stop_reason == silence_reason(600)
    assert [e.detail for e in store.trials.events(project.id, silent)][-1] == run.stop_reason
    for alive in (beating, fresh):
        assert store.runs.get(project.id, alive).trial.status is TrialStatus.RUNNING
    # Silent now too, but looked for again only after RUNS_CHECK_SECONDS.
    _silent_for(store, fresh, 700)
    assert housekeeping.tick().runs_given_up == 0
    clock.advance(RUNS_CHECK_SECONDS)
    assert housekeeping.tick().runs_given_up == 1
    assert not store.runs.touch(project.id, silent)  # a given-up run is not revived by a beat
    assert not store.runs.touch(project.id + 1, beating)  # nor another project's run touched
    assert store.runs.touch(project.id, beating)
    # Its script, back after all, finishes it: harmless; claiming success is a conflict.
    assert store.runs.finish(project.id, silent, None).trial.status is TrialStatus.FAILED
    with pytest.raises(Conflict):
        store.runs.finish(project.id, silent, TrialStatus.SUCCEEDED)


def test_without_a_silence_limit_runs_are_never_given_up(store: Store) -> None:
    project = store.projects.create("p")
    run_id = _new_run(store, project.id)
    _silent_for(store, run_id, 10 * 24 * 3600)
    assert Housekeeping(store, clock=FakeClock()).tick().runs_given_up == 0
    assert store.runs.get(project.id, run_id).trial.status is TrialStatus.RUNNING


def test_a_trial_answers_its_kind_last_step_and_heartbeat(client: TestClient, store: Store) -> None:
    run = start(client)
    assert client.get(f"/trials/{run['id']}").json()["kind"] == "external"
    sweep = client.post("/sweeps", json={"base": {"task": "digits"}})
    assert sweep.status_code == 201, sweep.text
    (queued,) = client.get(f"/sweeps/{sweep.json()['id']}/trials").json()["items"]
    assert (queued["kind"], queued["last_step"], queued["heartbeat_at"]) == ("trained", None, None)

    claimed = store.trial_states.claim_next("me", lambda t: t.id == queued["id"])
    assert claimed is not None
    store.trial_states.heartbeat(claimed.id, claimed.attempt, 7)

    trial = client.get(f"/trials/{claimed.id}").json()
    assert trial["last_step"] == 7 and trial["heartbeat_at"] is not None
