"""lrlab on a real multi-node Ray cluster: a head (1 CPU) and a node "b" (1 CPU, 1 fake
GPU) started with `ray start`, and the scheduler in its own process joining them through
LRLAB_RAY_ADDRESS, as `lrlab serve` does (this process may hold a local Ray already, and
one process can init Ray only once).

The tests run in file order, the destructive ones last: fractional GPUs (node b alive),
node b's death, then a scheduler restart. Node b is started again when a test needs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.domain.records import Trial, TrialStatus
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store, open_store
from services.sweeps.submit import submit_sweep
from tests.integration.ray_cluster import Driver, LocalCluster, RayNode, alive
from tests.support.postgres import temporary_pg_database
from tests.support.waiting import wait_until
from workers.checkpoints import CheckpointStore

pytestmark = pytest.mark.slow  # a cluster of `ray start` nodes, trials trained for real

LEASE_SECONDS = 3  # a dead scheduler's trials are requeued this soon after their last beat
EVERY = 100  # checkpoint_every of the trials that get killed


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("ray"), head_cpus=1)
    try:
        yield c
    finally:
        c.shutdown()


@pytest.fixture
def node_b(ray_cluster: LocalCluster) -> RayNode:
    """Node b, alive: 1 CPU, 1 GPU that does not exist (Ray only counts it)."""
    node = ray_cluster.nodes.get("b")
    if node is None or not node.running:
        node = ray_cluster.add_node("b", cpus=1, gpus=1)
    return node


@pytest.fixture(scope="module")
def db_url(pg_server: str) -> Iterator[str]:
    """A database of this module's own: its scheduler must see no other test's trials."""
    with temporary_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def pg(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lrlab")


@pytest.fixture(scope="module")
def driver(ray_cluster: LocalCluster, db_url: str, data_dir: Path, pg: Store) -> Iterator[Driver]:
    env = {
        "LRLAB_RAY_ADDRESS": ray_cluster.address,
        "LRLAB_DATABASE_URL": db_url,
        "LRLAB_DATA_DIR": str(data_dir),
        "LRLAB_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    d = Driver(env, data_dir / "driver.log")
    try:
        yield d
    finally:
        d.stop()


# -- helpers ------------------------------------------------------------------------------
def submit(store: Store, base: dict[str, Any], seeds: list[int]) -> int:
    project = store.projects.get_by_name("c") or store.projects.create("c")
    spec = SweepSpec.model_validate(
        {"base": base, "space": {"seed": seeds}, "max_concurrent": len(seeds)}
    )
    return submit_sweep(store, Settings(), project.id, spec).id


def trials(store: Store, sweep_id: int) -> list[Trial]:
    project = store.projects.get_by_name("c")
    assert project is not None
    return store.trials.list(project.id, sweep_id, limit=100, offset=0).items


def done(store: Store, *sweep_ids: int) -> bool:
    return all(t.status.is_terminal for s in sweep_ids for t in trials(store, s))


def pid_of(trial: Trial) -> int | None:
    return None if trial.worker is None else int(trial.worker.rsplit(":", 1)[1])


def events(store: Store, trial: Trial) -> list[tuple[TrialStatus, str | None]]:
    return [(e.status, e.detail) for e in store.trials.events(trial.project_id, trial.id)]


def training_span(store: Store, trial_id: int) -> tuple[float, float]:
    """When the worker recorded the trial's first and last training step."""
    with store.db.session() as s:
        first, last = s.execute(
            text(
                "SELECT min(recorded_at), max(recorded_at) FROM metric_points "
                "WHERE trial_id = :t AND name = 'train_loss'"
            ),
            {"t": trial_id},
        ).one()
    return float(first), float(last)


def assert_continuous(store: Store, trial_id: int, steps: int) -> None:
    """Every step once: no gap, no duplicate."""
    with store.db.session() as s:
        stored, distinct, low, high = s.execute(
            text(
                "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM metric_points "
                "WHERE trial_id = :t AND name = 'train_loss'"
            ),
            {"t": trial_id},
        ).one()
    assert (stored, distinct, low, high) == (steps, steps, 0, steps - 1)


def resumed_at(store: Store, trial_id: int, since: float) -> int:
    """The first step (re)written after `since`: where the next attempt resumed."""
    with store.db.session() as s:
        step = s.execute(
            text(
                "SELECT min(step) FROM metric_points "
                "WHERE trial_id = :t AND name = 'train_loss' AND recorded_at > :since"
            ),
            {"t": trial_id, "since": since},
        ).scalar_one()
    assert step is not None, "nothing was written after the kill"
    return int(step)


def checkpointed(data_dir: Path, trial_id: int) -> bool:
    """Whether the trial's first checkpoint is on disk (where the driver's settings put it)."""
    folder = Settings(data_dir=data_dir).checkpoint_dir / f"trial-{trial_id}"
    return CheckpointStore(folder).path.exists()


def regression(max_steps: int, **extra: Any) -> dict[str, Any]:
    """A small trial whose workers import no more than torch (every new Ray worker process
    pays its imports, and node b's workers are new in each test)."""
    return {
        "task": "regression",
        "budget": {"max_steps": max_steps},
        "eval_every": 1000,
        "checkpoint_every": EVERY,
        "max_restarts": 1,
        **extra,
    }


# -- tests --------------------------------------------------------------------------------
ENDLESS = 1_000_000  # steps: trains until the test cancels it


def last_step(store: Store, trial_id: int) -> int | None:
    """The highest training step stored so far (the trial is really training)."""
    with store.db.session() as s:
        step = s.execute(
            text("SELECT max(step) FROM metric_points WHERE trial_id = :t AND name = 'train_loss'"),
            {"t": trial_id},
        ).scalar_one()
    return None if step is None else int(step)


def cancel(store: Store, trial: Trial) -> None:
    store.trials.cancel(trial.project_id, trial.id)
    wait_until(
        lambda: store.trial_states.get(trial.id).status.is_terminal,  # type: ignore[union-attr]
        f"trial {trial.id} cancelled",
        timeout=60,
    )


def assert_trained_on_cpu_for_want_of_cuda(store: Store, trial: Trial) -> None:
    gpus = trial.spec["resources"]["gpus"]
    note = f"training on CPU: asked for {gpus:g} GPU but CUDA is not available"
    history = events(store, trial)
    assert any(s is TrialStatus.RUNNING and (d or "").startswith(note) for s, d in history)
    assert last_step(store, trial.id) is not None  # and it trained rather than failed


def test_fractional_gpus_share_a_gpu_and_whole_ones_take_turns_on_cpu_without_cuda(
    pg: Store, driver: Driver, node_b: RayNode
) -> None:
    driver.wait_resources(CPU=2, GPU=1)
    on_b: dict[int, bool] = {}  # trial -> whether its worker is a process of node b

    def training(sweep_id: int) -> list[Trial]:
        b_pids = node_b.pids()
        running = []
        for t in trials(pg, sweep_id):
            if t.status is TrialStatus.RUNNING and (pid := pid_of(t)) is not None:
                on_b.setdefault(t.id, pid in b_pids)
                if last_step(pg, t.id) is not None:
                    running.append(t)
        return running

    # Two trials of half the (only) GPU each: both train at the same time on node b.
    half = submit(pg, regression(ENDLESS, resources={"cpus": 0.5, "gpus": 0.5}), [1, 2])
    wait_until(lambda: len(training(half)) == 2, "two 0.5-GPU trials training at once", 120)
    for t in trials(pg, half):
        cancel(pg, t)
        assert_trained_on_cpu_for_want_of_cuda(pg, t)

    # Two trials of a whole GPU each: the second waits for the first to end.
    whole = submit(pg, regression(ENDLESS, resources={"cpus": 0.5, "gpus": 1}), [3, 4])
    first: Trial = wait_until(lambda: training(whole), "a 1-GPU trial training", 120)[0]
    wait_until(lambda: (last_step(pg, first.id) or 0) >= 300, "the first trained a while", 120)
    (second,) = (t for t in trials(pg, whole) if t.id != first.id)
    assert second.status is TrialStatus.QUEUED, "a second 1-GPU trial was let in"
    cancel(pg, first)
    wait_until(lambda: training(whole), "the second 1-GPU trial training", 120)
    cancel(pg, second)
    first_end = training_span(pg, first.id)[1]
    assert first_end < training_span(pg, second.id)[0]
    for t in (first, second):
        assert_trained_on_cpu_for_want_of_cuda(pg, t)
    assert set(on_b) == {t.id for s in (half, whole) for t in trials(pg, s)}
    assert all(on_b.values()), on_b  # node b is the only one with a GPU


def test_a_trial_on_a_dying_node_resumes_from_its_checkpoint_on_the_surviving_one(
    pg: Store, driver: Driver, node_b: RayNode, data_dir: Path
) -> None:
    driver.wait_resources(CPU=2, GPU=1)
    steps = 2000
    sweep = submit(pg, regression(steps), [5, 6])  # 1 CPU each: one per node

    def victim() -> Trial | None:
        b_pids = node_b.pids()
        for t in trials(pg, sweep):
            pid = pid_of(t)
            if pid in b_pids and t.status is TrialStatus.RUNNING and checkpointed(data_dir, t.id):
                return t
        return None

    doomed: Trial = wait_until(victim, "a trial on node b past its first checkpoint", 120)
    survivor = next(t for t in trials(pg, sweep) if t.id != doomed.id)
    node_b.kill()
    killed_at = time.time()
    assert not node_b.pids()

    wait_until(lambda: done(pg, sweep), "both trials finished", timeout=180)
    first_pid = pid_of(doomed)
    ended = {t.id: (t.status, t.attempt) for t in trials(pg, sweep)}
    assert ended == {doomed.id: (TrialStatus.SUCCEEDED, 1), survivor.id: (TrialStatus.SUCCEEDED, 0)}
    statuses = [status for status, _ in events(pg, doomed)]
    assert statuses == [
        TrialStatus.QUEUED,
        TrialStatus.RUNNING,
        TrialStatus.QUEUED,
        TrialStatus.RUNNING,
        TrialStatus.SUCCEEDED,
    ]
    requeued = events(pg, doomed)[2][1]
    assert requeued is not None and requeued.startswith("requeued (attempt 1)")
    second = pg.trial_states.get(doomed.id)
    assert second is not None and pid_of(second) not in (None, first_pid)  # another worker
    for t in (doomed, survivor):
        assert_continuous(pg, t.id, steps)
    start = resumed_at(pg, doomed.id, killed_at)
    assert start >= EVERY and start % EVERY == 0, f"resumed at step {start}"


def test_a_restarted_scheduler_requeues_its_predecessors_trial_which_runs_once_at_a_time(
    pg: Store, driver: Driver, data_dir: Path
) -> None:
    steps = 2000
    sweep = submit(pg, regression(steps), [7])
    (trial,) = trials(pg, sweep)

    def running_past_checkpoint() -> Trial | None:
        t = pg.trial_states.get(trial.id)
        ok = t is not None and pid_of(t) is not None and checkpointed(data_dir, trial.id)
        return t if ok else None

    before: Trial = wait_until(running_past_checkpoint, "the trial past its checkpoint", 120)
    old_pid = pid_of(before)
    assert old_pid is not None and before.attempt == 0
    driver.kill()  # the scheduler dies; Ray stops the tasks it owned
    killed_at = time.time()
    driver.start()  # a new scheduler, a new id: it finds the trial by its stale lease

    def second_attempt() -> Trial | None:
        t = pg.trial_states.get(trial.id)
        return t if t is not None and t.attempt == 1 and t.worker is not None else None

    wait_until(second_attempt, "the trial requeued and running again", timeout=120)
    assert not alive(old_pid), "the first attempt still runs next to the second"
    wait_until(lambda: done(pg, sweep), "the trial finished", timeout=180)
    after = pg.trial_states.get(trial.id)
    assert after is not None and (after.status, after.attempt) == (TrialStatus.SUCCEEDED, 1)
    history = events(pg, after)
    assert [s for s, _ in history] == [
        TrialStatus.QUEUED,
        TrialStatus.RUNNING,
        TrialStatus.QUEUED,
        TrialStatus.RUNNING,
        TrialStatus.SUCCEEDED,
    ]
    assert history[2][1] == "requeued (attempt 1): worker heartbeat lost"
    owners = [(d or "").split(" by ")[-1] for s, d in history if s is TrialStatus.RUNNING]
    assert len(set(owners)) == 2  # the first scheduler, then the new one
    assert_continuous(pg, after.id, steps)
    start = resumed_at(pg, after.id, killed_at)
    assert start >= EVERY and start % EVERY == 0, f"resumed at step {start}"
