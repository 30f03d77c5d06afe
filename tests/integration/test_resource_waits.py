"""Trials no node can run: refused at submission on a fixed cluster (POST /sweeps, /jobs,
/lr-find), and, when accepted (the cluster unknown then, or one that may grow), queued
with a visible reason that a node joining clears; such trials never block the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.domain.capacity import ClusterCapacity, NodeResources
from services.domain.records import TrialStatus
from services.scheduling.launcher import RunOutcome
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps.submit import submit_sweep
from tests.integration.fakes import FakeLauncher
from tests.support.api import assert_invalid, created, job, sweep

CPU_NODE = NodeResources(2.0, 0.0)
SHORT = "no node has 1 GPU; largest node: 2 CPUs, 0 GPUs"
GPU = {"resources": {"gpus": 1}}


@pytest.fixture
def fixed(app: FastAPI) -> ClusterCapacity:
    """The app sees a fixed cluster of one 2-CPU node, as its scheduler would report it."""
    capacity = ClusterCapacity((CPU_NODE,))
    app.state.capacity = lambda: capacity
    return capacity


@pytest.mark.usefixtures("fixed")
def test_a_fixed_cluster_refuses_what_no_node_has(client: TestClient) -> None:
    before = client.get("/sweeps").json()["total"]
    response = client.post("/sweeps", json=sweep(base=job(**GPU)))
    assert_invalid(response, "base.resources.gpus", f"{SHORT}. The cluster is fixed")
    response = client.post("/jobs", json=job(resources={"cpus": 64}))
    assert_invalid(response, "resources.cpus", "no node has 64 CPUs; largest node: 2 CPUs")
    space = {"resources.cpus": {"distribution": "int_uniform", "low": 1, "high": 8}}
    response = client.post("/sweeps", json=sweep(method="random", space=space))
    assert_invalid(response, "space.resources.cpus", "no node has 8 CPUs")
    response = client.post("/lr-find", json={"base": job(**GPU)})
    assert_invalid(response, "base.resources.gpus", SHORT)
    assert client.get("/sweeps").json()["total"] == before  # nothing stored
    # What a node holds is accepted as before.
    created(client.post("/sweeps", json=sweep(space={"resources.cpus": [1, 2]})))


def test_a_cluster_that_may_grow_accepts_it(app: FastAPI, client: TestClient) -> None:
    growing = ClusterCapacity((CPU_NODE,), may_grow=True)
    app.state.capacity = lambda: growing
    created(client.post("/sweeps", json=sweep(base=job(**GPU))))


def submit(store: Store, base: dict[str, Any], **options: Any) -> tuple[int, int]:
    project = store.projects.get_by_name("p") or store.projects.create("p")
    spec = SweepSpec.model_validate({"base": base, **options})
    # No capacity known at submission: accepted, as before the scheduler's first look.
    return project.id, submit_sweep(store, Settings(), project.id, spec).id


def scheduler_for(store: Store, launcher: FakeLauncher, tmp_path: Path, grow: bool) -> Scheduler:
    return Scheduler(
        store,
        launcher,
        database_url=store.db.url,
        checkpoint_root=tmp_path / "checkpoints",
        cluster_may_grow=grow,
    )


def test_a_queued_trial_no_node_holds_waits_with_the_reason_until_a_node_joins(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gpu_project, gpu_sweep = submit(store, {"task": "digits", **GPU})
    _, cpu_sweep = submit(store, {"task": "digits"})
    launcher = FakeLauncher(cpus=2, gpus=0, nodes=[CPU_NODE])
    scheduler = scheduler_for(store, launcher, tmp_path, grow=False)
    with caplog.at_level("WARNING", logger="lrlab.scheduler"):
        scheduler.tick()
    assert scheduler.capacity == ClusterCapacity((CPU_NODE,))
    assert [a.sweep_id for a in launcher.launches] == [cpu_sweep]  # not blocked behind it
    (waiting,) = store.trials.list(gpu_project, gpu_sweep, limit=10, offset=0).items
    reason = f"waiting: {SHORT}; it starts once a node that has them joins"
    assert waiting.status is TrialStatus.QUEUED and waiting.status_reason == reason
    assert store.trials.events(gpu_project, waiting.id)[-1].detail == reason
    assert f"trial {waiting.id} of sweep {gpu_sweep} is {reason}" in caplog.text
    assert store.sweeps.get(gpu_project, gpu_sweep).status_reason == f"1 queued trial {reason}"

    # A GPU node joins: the wait is judged again, and the trial starts.
    launcher.gpus = 1.0
    launcher.cluster_nodes = [CPU_NODE, NodeResources(4.0, 1.0)]
    scheduler.tick()
    started = store.trial_states.get(waiting.id)
    assert started is not None and started.status is TrialStatus.RUNNING
    assert started.status_reason is None
    assert store.sweeps.get(gpu_project, gpu_sweep).status_reason is None


def test_waiting_trials_never_fill_the_claim_window(store: Store, tmp_path: Path) -> None:
    # More waiting trials than one claim looks at (32), all older than the CPU trial.
    submit(store, {"task": "digits", **GPU}, space={"seed": list(range(40))}, max_concurrent=40)
    project_id, cpu_sweep = submit(store, {"task": "digits"})
    launcher = FakeLauncher(cpus=2, nodes=[CPU_NODE], auto=RunOutcome.SUCCEEDED)
    scheduler = scheduler_for(store, launcher, tmp_path, grow=True)
    for _ in range(3):
        scheduler.tick()
    assert [a.sweep_id for a in launcher.launches] == [cpu_sweep]
    (trial,) = store.trials.list(project_id, cpu_sweep, limit=10, offset=0).items
    assert trial.status is TrialStatus.SUCCEEDED
    gpu = store.sweeps.list(project_id, limit=10, offset=0).items[-1]
    assert gpu.status_reason == (
        f"40 queued trials waiting: {SHORT}; it starts once the cluster grows"
    )


def test_an_unknown_cluster_marks_nothing(store: Store, tmp_path: Path) -> None:
    project_id, sweep_id = submit(store, {"task": "digits", **GPU})
    scheduler = scheduler_for(store, FakeLauncher(cpus=2, gpus=0), tmp_path, grow=False)
    scheduler.tick()
    (trial,) = store.trials.list(project_id, sweep_id, limit=10, offset=0).items
    assert trial.status is TrialStatus.QUEUED and trial.status_reason is None
    assert scheduler.capacity is None


def test_cancelling_a_waiting_trial_drops_its_reason(store: Store, tmp_path: Path) -> None:
    project_id, sweep_id = submit(store, {"task": "digits", **GPU})
    scheduler = scheduler_for(store, FakeLauncher(nodes=[CPU_NODE]), tmp_path, grow=False)
    scheduler.tick()
    cancelled = store.sweeps.cancel(project_id, sweep_id)
    assert cancelled.status_reason is None
    (trial,) = store.trials.list(project_id, sweep_id, limit=10, offset=0).items
    assert trial.status is TrialStatus.CANCELLED and trial.status_reason is None


def test_the_session_ray_reports_its_node(ray_scheduler: Scheduler) -> None:
    import ray

    ray_scheduler.tick()
    # The session's local Ray: one node of 2 CPUs (tests/conftest.py), GPUs as detected.
    gpus = ray.cluster_resources().get("GPU", 0.0)
    assert ray_scheduler.capacity == ClusterCapacity((NodeResources(2.0, gpus),))
