"""The scheduler and the trial state machine, over SQLite and PostgreSQL (`store`), driven
with an in-memory launcher and a fake clock: no Ray, no sleeps standing in for events."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sized
from datetime import timedelta
from pathlib import Path

import pytest

from services.domain.records import Sweep, SweepStatus, Trial, TrialStatus
from services.domain.submissions import NewSweep, NewTrial
from services.domain.trial_life import Heartbeat
from services.scheduling.launcher import RunOutcome, RunReport
from services.scheduling.scheduler import Scheduler, TickResult
from services.store import Store, open_store
from services.store.tables import utcnow
from tests.integration.fakes import FakeClock, FakeLauncher, Ledger
from tests.support.rows import backdate_heartbeat
from tests.support.scheduling import drive_together, max_overlap, tick_until
from tests.support.waiting import wait_until

ME = "sched-a"
_names = itertools.count()


# -- helpers ------------------------------------------------------------------------------
def _sweep(
    store: Store,
    n: int = 3,
    *,
    max_concurrent: int = 4,
    max_restarts: int = 1,
    cpus: float = 1.0,
    gpus: float = 0.0,
    project_id: int | None = None,
) -> Sweep:
    if project_id is None:
        project_id = store.projects.create(f"p{next(_names)}").id
    spec = {"task": "mnist", "resources": {"cpus": cpus, "gpus": gpus}}
    return store.sweeps.create(
        project_id,
        NewSweep(
            name=f"s{next(_names)}",
            method="grid",
            spec={},
            metric_name="val_loss",
            metric_goal="minimize",
            max_trials=None,
            max_concurrent=max_concurrent,
        ),
        [NewTrial(params={"i": i}, spec=spec, max_restarts=max_restarts) for i in range(n)],
    )


def _trials(store: Store, sweep: Sweep) -> list[Trial]:
    return store.trials.list(sweep.project_id, sweep.id, limit=1000, offset=0).items


def _get(store: Store, trial: Trial) -> Trial:
    return store.trials.get(trial.project_id, trial.id)


def _events(store: Store, trial: Trial) -> list[tuple[TrialStatus, str | None]]:
    return [(e.status, e.detail) for e in store.trials.events(trial.project_id, trial.id)]


def _statuses(events: list[tuple[TrialStatus, str | None]]) -> list[TrialStatus]:
    return [status for status, _ in events]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher(cpus=8)


@pytest.fixture
def make_scheduler(
    store: Store, launcher: FakeLauncher, clock: FakeClock, tmp_path: Path
) -> Callable[..., Scheduler]:
    def make(**kwargs: object) -> Scheduler:
        options: dict[str, object] = {
            "database_url": store.db.url,
            "checkpoint_root": tmp_path / "checkpoints",
            "scheduler_id": ME,
            "clock": clock,
            **kwargs,
        }
        fake = options.pop("launcher", launcher)
        return Scheduler(store, fake, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def scheduler(make_scheduler: Callable[..., Scheduler]) -> Scheduler:
    return make_scheduler()


# -- claiming -----------------------------------------------------------------------------
def test_claims_respect_max_concurrent_per_sweep(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher, tmp_path: Path
) -> None:
    sweep = _sweep(store, 5, max_concurrent=2)
    result = scheduler.tick()
    assert result.launched == 2
    first, second, third = _trials(store, sweep)[:3]
    assert [a.trial_id for a in launcher.launches] == [first.id, second.id]

    a = launcher.launches[0]
    assert (a.sweep_id, a.attempt, a.cpus, a.gpus) == (sweep.id, 0, 1.0, 0.0)
    assert a.checkpoint_dir == tmp_path / "checkpoints" / f"trial-{first.id}"
    assert a.database_url == store.db.url
    assert a.spec == first.spec

    trial = _get(store, first)
    assert trial.status is TrialStatus.RUNNING
    assert trial.owner == ME and trial.worker is None and trial.started_at is not None
    assert _events(store, trial) == [
        (TrialStatus.QUEUED, None),
        (TrialStatus.RUNNING, f"attempt 0 started by {ME}"),
    ]
    assert scheduler.tick().launched == 0  # still full

    launcher.end(first.id, RunOutcome.SUCCEEDED)
    result = scheduler.tick()
    assert (result.succeeded, result.launched) == (1, 1)
    assert launcher.launches[-1].trial_id == third.id  # oldest first
    assert launcher.max_in_flight == 2


def test_claims_respect_launcher_capacity(
    store: Store, make_scheduler: Callable[..., Scheduler]
) -> None:
    fake = FakeLauncher(cpus=5)
    scheduler = make_scheduler(launcher=fake)
    big = _sweep(store, 1, cpus=4, max_concurrent=10)
    small = _sweep(store, 6, cpus=1, max_concurrent=10)
    assert scheduler.tick().launched == 2  # 4 + 1 cpus
    assert [a.cpus for a in fake.launches] == [4.0, 1.0]

    fake.end(fake.launches[0].trial_id, RunOutcome.SUCCEEDED)
    fake.cpus = 3  # the cluster shrank: the big one would not fit now anyway
    assert scheduler.tick().launched == 2
    assert sum(a.cpus for a in fake.in_flight.values()) <= 3
    assert {a.sweep_id for a in fake.launches} == {big.id, small.id}


def test_a_trial_that_does_not_fit_does_not_block_smaller_ones(
    store: Store, make_scheduler: Callable[..., Scheduler]
) -> None:
    fake = FakeLauncher(cpus=3, gpus=0)
    scheduler = make_scheduler(launcher=fake)
    gpu = _sweep(store, 2, cpus=1, gpus=1)
    cpu = _sweep(store, 5, cpus=1)
    assert scheduler.tick().launched == 3
    assert {a.sweep_id for a in fake.launches} == {cpu.id}
    assert all(t.status is TrialStatus.QUEUED for t in _trials(store, gpu))


def test_a_full_sweeps_backlog_does_not_starve_other_sweeps(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    busy = _sweep(store, 40, max_concurrent=1)  # more queued trials than the scan window
    later = _sweep(store, 2, max_concurrent=2)
    assert scheduler.tick().launched == 3
    assert sorted(a.sweep_id for a in launcher.launches) == [busy.id, later.id, later.id]


def test_only_running_sweeps_are_claimed_from(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    sweep = _sweep(store, 2)
    store.sweeps.cancel(sweep.project_id, sweep.id)
    assert scheduler.tick().launched == 0
    assert launcher.launches == []


# -- outcomes -----------------------------------------------------------------------------
def _launch_one(store: Store, scheduler: Scheduler, **sweep_options: object) -> Trial:
    sweep = _sweep(store, 1, **sweep_options)  # type: ignore[arg-type]
    assert scheduler.tick().launched == 1
    return _trials(store, sweep)[0]


def test_succeeded(store: Store, scheduler: Scheduler, launcher: FakeLauncher) -> None:
    trial = _launch_one(store, scheduler)
    launcher.end(trial.id, RunOutcome.SUCCEEDED, detail="budget reached", last_step=500)
    result = scheduler.tick()
    assert (result.succeeded, result.sweeps_finished) == (1, 1)
    done = _get(store, trial)
    assert done.status is TrialStatus.SUCCEEDED
    assert done.stop_reason == "budget reached" and done.last_step == 500
    assert done.error is None and done.finished_at is not None
    assert _events(store, trial)[-1] == (TrialStatus.SUCCEEDED, "budget reached")


def test_failed_keeps_error_and_traceback(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    trial = _launch_one(store, scheduler, max_restarts=3)
    tb = 'Traceback (most recent call last):\n  File "x.py"\nValueError: bad shape'
    launcher.end(trial.id, RunOutcome.FAILED, error="ValueError: bad shape", traceback=tb)
    result = scheduler.tick()
    assert (result.failed, result.launched, result.requeued) == (1, 0, 0)  # not retried
    done = _get(store, trial)
    assert done.status is TrialStatus.FAILED
    assert (done.error, done.traceback, done.attempt) == ("ValueError: bad shape", tb, 0)
    assert _events(store, trial)[-1] == (TrialStatus.FAILED, "ValueError: bad shape")


def test_diverged_is_pruned_with_its_reason(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    trial = _launch_one(store, scheduler)
    reason = "diverged: train_loss is nan at step 412"
    launcher.end(trial.id, RunOutcome.DIVERGED, detail=reason, last_step=412)
    assert scheduler.tick().pruned == 1
    done = _get(store, trial)
    assert (done.status, done.stop_reason, done.last_step) == (TrialStatus.PRUNED, reason, 412)
    assert done.error is None
    assert _events(store, trial)[-1] == (TrialStatus.PRUNED, reason)


def test_lost_is_requeued_relaunched_and_fails_after_max_restarts(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    trial = _launch_one(store, scheduler, max_restarts=2)
    started_at = _get(store, trial).started_at
    for attempt in (1, 2):
        launcher.end(trial.id, RunOutcome.LOST, error="node died")
        result = scheduler.tick()
        assert (result.requeued, result.launched) == (1, 1)
        assert launcher.attempt_of(trial.id) == attempt
        now = _get(store, trial)
        assert (now.status, now.attempt, now.owner) == (TrialStatus.RUNNING, attempt, ME)
        assert now.started_at == started_at  # a restart keeps the first start time
    # Every attempt resumes from the same checkpoint folder.
    assert len({a.checkpoint_dir for a in launcher.launches}) == 1

    launcher.end(trial.id, RunOutcome.LOST, error="node died")
    result = scheduler.tick()
    assert (result.failed, result.launched, result.sweeps_finished) == (1, 0, 1)
    done = _get(store, trial)
    assert done.status is TrialStatus.FAILED
    assert done.error == "gave up after 2 restarts: node died"
    assert _events(store, trial) == [
        (TrialStatus.QUEUED, None),
        (TrialStatus.RUNNING, f"attempt 0 started by {ME}"),
        (TrialStatus.QUEUED, "requeued (attempt 1): node died"),
        (TrialStatus.RUNNING, f"attempt 1 restarted by {ME}"),
        (TrialStatus.QUEUED, "requeued (attempt 2): node died"),
        (TrialStatus.RUNNING, f"attempt 2 restarted by {ME}"),
        (TrialStatus.FAILED, "gave up after 2 restarts: node died"),
    ]


def test_lost_without_error_says_worker_lost(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    trial = _launch_one(store, scheduler)
    launcher.end(trial.id, RunOutcome.LOST)
    scheduler.tick()
    assert (TrialStatus.QUEUED, "requeued (attempt 1): worker lost") in _events(store, trial)


def test_launch_failure_requeues_and_retries_next_tick(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    sweep = _sweep(store, 2, max_restarts=1)
    launcher.fail_next_launch = RuntimeError("ray is down")
    result = scheduler.tick()
    assert (result.launched, result.requeued) == (0, 1)  # and no more claims this tick
    first = _trials(store, sweep)[0]
    assert (first.status, first.attempt) == (TrialStatus.QUEUED, 1)
    assert (TrialStatus.QUEUED, "requeued (attempt 1): launch failed: ray is down") in _events(
        store, first
    )
    assert scheduler.tick().launched == 2


def test_a_late_report_about_a_requeued_attempt_is_ignored(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    trial = _launch_one(store, scheduler)
    launcher.end(trial.id, RunOutcome.LOST)
    scheduler.tick()  # attempt 1 runs now
    launcher.report(RunReport(trial_id=trial.id, attempt=0, outcome=RunOutcome.SUCCEEDED))
    result = scheduler.tick()
    assert (result.ignored, result.succeeded) == (1, 0)
    assert _get(store, trial).status is TrialStatus.RUNNING


def test_reports_are_kept_when_recording_them_fails(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial = _launch_one(store, scheduler)
    launcher.end(trial.id, RunOutcome.SUCCEEDED)
    states = store.trial_states

    def broken(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("database went away")

    monkeypatch.setattr(states, "finish", broken)
    with pytest.raises(ConnectionError):
        scheduler.tick()
    monkeypatch.undo()
    assert scheduler.tick().succeeded == 1
    assert _get(store, trial).status is TrialStatus.SUCCEEDED


# -- cancelling ---------------------------------------------------------------------------
def test_cancel_flag_reaches_the_worker_which_reports_cancelled(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher, clock: FakeClock
) -> None:
    trial = _launch_one(store, scheduler)
    assert store.trial_states.heartbeat(trial.id, 0, 10).cancel_requested is False
    store.trials.cancel(trial.project_id, trial.id)
    assert scheduler.tick().force_cancelled == 0
    beat = store.trial_states.heartbeat(trial.id, 0, 20)
    assert beat.alive and beat.cancel_requested

    launcher.end(trial.id, RunOutcome.CANCELLED, detail="saw the cancel flag", last_step=20)
    clock.advance(60)  # it reported: nothing to force any more
    result = scheduler.tick()
    assert (result.cancelled, result.force_cancelled) == (1, 0)
    assert launcher.cancels == []
    done = _get(store, trial)
    assert (done.status, done.stop_reason) == (TrialStatus.CANCELLED, "cancelled by request")
    assert _events(store, trial)[-1] == (TrialStatus.CANCELLED, "cancelled by request")


def test_no_report_within_grace_cancels_by_force_exactly_once(
    store: Store, make_scheduler: Callable[..., Scheduler], clock: FakeClock
) -> None:
    fake = FakeLauncher(cpus=8)
    scheduler = make_scheduler(launcher=fake, cancel_grace_seconds=5.0)
    trial = _launch_one(store, scheduler)
    store.trials.cancel(trial.project_id, trial.id)

    scheduler.tick()  # the flag is first seen now
    clock.advance(4.9)
    assert scheduler.tick().force_cancelled == 0
    clock.advance(0.2)
    assert scheduler.tick().force_cancelled == 1
    assert fake.cancels == [trial.id]
    for _ in range(3):
        clock.advance(10)
        assert scheduler.tick().force_cancelled == 0
    assert fake.cancels == [trial.id]

    # The killed worker comes back as LOST: a trial asked to stop is cancelled, not retried.
    fake.end(trial.id, RunOutcome.LOST, error="killed")
    result = scheduler.tick()
    assert (result.cancelled, result.requeued, result.launched) == (1, 0, 0)
    assert _get(store, trial).status is TrialStatus.CANCELLED


def test_cancel_sweep_ends_every_trial_cancelled(
    store: Store, make_scheduler: Callable[..., Scheduler], clock: FakeClock
) -> None:
    fake = FakeLauncher(cpus=8, kill_on_cancel=True)
    scheduler = make_scheduler(launcher=fake)
    sweep = _sweep(store, 5, max_concurrent=2)
    assert scheduler.tick().launched == 2
    polite, stubborn = (a.trial_id for a in fake.launches)

    cancelled = store.sweeps.cancel(sweep.project_id, sweep.id)
    assert cancelled.status is SweepStatus.CANCELLED
    assert scheduler.tick().launched == 0
    fake.end(polite, RunOutcome.CANCELLED)
    clock.advance(30)
    tick_until(scheduler.tick, lambda: not fake.in_flight, limit=5)
    scheduler.tick()

    trials = _trials(store, sweep)
    assert [t.status for t in trials] == [TrialStatus.CANCELLED] * 5
    assert fake.cancels == [stubborn]
    assert [t.stop_reason for t in trials[:2]] == ["cancelled by request"] * 2
    assert store.sweeps.get(sweep.project_id, sweep.id).status is SweepStatus.CANCELLED


# -- leases -------------------------------------------------------------------------------
def test_stale_trial_of_another_scheduler_is_requeued_and_relaunched(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    sweep = _sweep(store, 1)
    orphan = store.trial_states.claim_next("dead-scheduler", lambda t: True)
    assert orphan is not None and orphan.owner == "dead-scheduler"
    backdate_heartbeat(store, orphan.id, 120)

    result = scheduler.tick()
    assert (result.requeued, result.launched) == (1, 1)
    assert launcher.attempt_of(orphan.id) == 1
    now = _get(store, orphan)
    assert (now.status, now.attempt, now.owner) == (TrialStatus.RUNNING, 1, ME)
    assert (TrialStatus.QUEUED, "requeued (attempt 1): worker heartbeat lost") in _events(
        store, now
    )
    # The old worker learns at its next heartbeat that its attempt is over.
    beat = store.trial_states.heartbeat(orphan.id, 0, 99)
    assert beat == Heartbeat(alive=False, cancel_requested=False)
    assert _trials(store, sweep)[0].last_step is None  # the stale beat changed nothing


def test_fresh_heartbeat_of_another_scheduler_is_left_alone(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    _sweep(store, 1)
    theirs = store.trial_states.claim_next("other-scheduler", lambda t: True)
    assert theirs is not None
    backdate_heartbeat(store, theirs.id, 10)  # within the 30 s lease
    result = scheduler.tick()
    assert result == TickResult()
    now = _get(store, theirs)
    assert (now.status, now.attempt, now.owner) == (TrialStatus.RUNNING, 0, "other-scheduler")
    assert launcher.launches == []


def test_own_trial_in_flight_is_not_requeued_even_without_heartbeats(
    store: Store, scheduler: Scheduler, launcher: FakeLauncher
) -> None:
    trial = _launch_one(store, scheduler)
    backdate_heartbeat(store, trial.id, 3600)  # the launcher still says it runs
    assert scheduler.tick() == TickResult()
    assert _get(store, trial).attempt == 0


def test_restarted_scheduler_requeues_what_its_predecessor_ran(
    store: Store, make_scheduler: Callable[..., Scheduler]
) -> None:
    sweep = _sweep(store, 2, max_concurrent=2)
    old = make_scheduler(launcher=FakeLauncher(), scheduler_id="sched-old")
    assert old.tick().launched == 2
    for t in _trials(store, sweep):
        backdate_heartbeat(store, t.id, 31)
    new_launcher = FakeLauncher()
    new = make_scheduler(launcher=new_launcher, scheduler_id="sched-new")
    result = new.tick()
    assert (result.requeued, result.launched) == (2, 2)
    assert all(t.owner == "sched-new" and t.attempt == 1 for t in _trials(store, sweep))


# -- the state machine directly -----------------------------------------------------------
def test_heartbeat_renews_the_lease_and_records_the_step(store: Store) -> None:
    _sweep(store, 1)
    states = store.trial_states
    trial = states.claim_next(ME, lambda t: True)
    assert trial is not None
    backdate_heartbeat(store, trial.id, 100)
    assert [t.id for t in states.stale_running(30)] == [trial.id]
    assert states.heartbeat(trial.id, 0, 42).alive
    assert states.stale_running(30) == []
    assert states.heartbeat(trial.id, 0, None).alive  # None keeps the last step
    assert states.get(trial.id).last_step == 42  # type: ignore[union-attr]
    later = utcnow() + timedelta(seconds=60)
    assert [t.id for t in states.stale_running(30, now=later)] == [trial.id]


def test_heartbeat_after_requeue_is_not_alive(store: Store) -> None:
    _sweep(store, 1, max_restarts=1)
    states = store.trial_states
    trial = states.claim_next(ME, lambda t: True)
    assert trial is not None
    assert states.requeue_or_fail(trial.id, 0, "preempted") is TrialStatus.QUEUED
    beat = states.heartbeat(trial.id, 0, 7)
    assert not beat.alive
    assert states.heartbeat(10**9, 0, None) == beat  # an unknown trial is not alive either


def test_fenced_operations_refuse_the_wrong_attempt(store: Store) -> None:
    _sweep(store, 1, max_restarts=2)
    states = store.trial_states
    trial = states.claim_next(ME, lambda t: True)
    assert trial is not None
    assert not states.finish(trial.id, 1, TrialStatus.SUCCEEDED)
    assert not states.attach_worker(trial.id, 1, "node-9:123")
    assert states.requeue_or_fail(trial.id, 1, "nope") is None
    assert not states.heartbeat(trial.id, 1, None).alive
    assert states.get(trial.id).status is TrialStatus.RUNNING  # type: ignore[union-attr]

    assert states.attach_worker(trial.id, 0, "node-1:4242")
    assert states.get(trial.id).worker == "node-1:4242"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="terminal"):
        states.finish(trial.id, 0, TrialStatus.QUEUED)
    assert states.finish(trial.id, 0, TrialStatus.SUCCEEDED)
    assert not states.finish(trial.id, 0, TrialStatus.FAILED)  # already finished
    assert states.get(trial.id).status is TrialStatus.SUCCEEDED  # type: ignore[union-attr]


def test_a_workers_note_is_recorded_as_a_running_event(store: Store) -> None:
    _sweep(store, 1)
    states = store.trial_states
    trial = states.claim_next(ME, lambda t: True)
    assert trial is not None
    note = "training on CPU: asked for 0.5 GPU but CUDA is not available on node-2"
    assert not states.attach_worker(trial.id, 1, "node-2:77", note=note)  # fenced: no event
    assert states.attach_worker(trial.id, 0, "node-2:77", note=note)
    assert _events(store, trial)[-2:] == [
        (TrialStatus.RUNNING, f"attempt 0 started by {ME}"),
        (TrialStatus.RUNNING, note),
    ]
    assert _get(store, trial).status is TrialStatus.RUNNING


def test_running_lists_by_owner(store: Store) -> None:
    _sweep(store, 3)
    states = store.trial_states
    mine = states.claim_next("a", lambda t: True)
    theirs = states.claim_next("b", lambda t: True)
    assert mine is not None and theirs is not None
    assert [t.id for t in states.running()] == [mine.id, theirs.id]
    assert [t.id for t in states.running(owner="a")] == [mine.id]
    assert states.claim_next("a", lambda t: False) is None  # nothing accepted


def test_a_sweeps_last_slot_goes_to_one_claimer_only(store: Store) -> None:
    _sweep(store, 2, max_concurrent=1)
    states = store.trial_states
    rival: list[Trial | None] = []
    thread = threading.Thread(
        target=lambda: rival.append(states.claim_next("rival", lambda t: True))
    )

    def accept(trial: Trial) -> bool:
        # Runs inside our claim, after it counted the sweep's running trials: a rival claims
        # right now, so a count not taken under the sweep's lock would let both through.
        if not thread.is_alive() and not rival:
            thread.start()
            # On PostgreSQL the rival never waits (it skips locked rows) and is done at once.
            # On SQLite it must wait for our write lock, so this join runs out and it claims
            # after our commit; a claim that did not serialise would be done by then.
            thread.join(10 if store.db.is_postgres else 0.5)
        return True

    mine = states.claim_next("me", accept, scan=1)  # leaves the second trial to the rival
    thread.join(10)
    assert mine is not None
    assert rival == [None]
    assert [t.owner for t in states.running()] == ["me"]


def test_sweeps_become_finished(store: Store, scheduler: Scheduler, launcher: FakeLauncher) -> None:
    project = store.projects.create("finishing")
    done = _sweep(store, 2, project_id=project.id)
    busy = _sweep(store, 1, project_id=project.id, cpus=100)  # never fits: stays queued
    empty = _sweep(store, 0, project_id=project.id)
    scheduler.tick()
    for t in _trials(store, done):
        launcher.end(t.id, RunOutcome.SUCCEEDED)
    assert scheduler.tick().sweeps_finished == 1

    finished = store.sweeps.get(project.id, done.id)
    assert finished.status is SweepStatus.FINISHED and finished.finished_at is not None
    assert store.sweeps.get(project.id, busy.id).status is SweepStatus.RUNNING
    assert store.sweeps.get(project.id, empty.id).status is SweepStatus.RUNNING
    assert store.trial_states.finish_sweeps() == []


# -- the background loop ------------------------------------------------------------------
def test_a_pass_that_starts_or_ends_a_trial_calls_on_change_and_an_idle_one_does_not(
    store: Store, make_scheduler: Callable[..., Scheduler], launcher: FakeLauncher
) -> None:
    changes: list[str] = []
    scheduler = make_scheduler(on_change=lambda: changes.append("changed"))
    assert scheduler.tick() == TickResult() and changes == []  # nothing queued
    sweep = _sweep(store, 1)
    assert scheduler.tick().launched == 1 and len(changes) == 1
    assert scheduler.tick() == TickResult() and len(changes) == 1  # running: no news
    launcher.end(_trials(store, sweep)[0].id, RunOutcome.SUCCEEDED)
    result = scheduler.tick()
    assert (result.succeeded, result.sweeps_finished) == (1, 1) and len(changes) == 2


def test_the_loop_counts_attempts_in_flight_as_work(
    store: Store, make_scheduler: Callable[..., Scheduler], launcher: FakeLauncher
) -> None:
    """While attempts run the loop keeps its short interval (cancel escalation, leases);
    with none and nothing done it backs off."""
    scheduler = make_scheduler()
    assert scheduler._loop_tick() is False  # idle
    sweep = _sweep(store, 1)
    assert scheduler._loop_tick() is True  # launched
    assert scheduler._loop_tick() is True  # nothing done, but an attempt in flight
    launcher.end(_trials(store, sweep)[0].id, RunOutcome.SUCCEEDED)
    assert scheduler._loop_tick() is True  # recorded its end
    assert scheduler._loop_tick() is False


def test_background_loop_ticks_on_wake_and_survives_a_failing_tick(
    store: Store, make_scheduler: Callable[..., Scheduler]
) -> None:
    fake = FakeLauncher()
    scheduler = make_scheduler(launcher=fake)
    fake.fail_next_poll = RuntimeError("cluster hiccup")  # the first tick raises
    scheduler.start(interval=3600)  # only wake() can make it tick again in this test
    try:
        with pytest.raises(RuntimeError, match="already"):
            scheduler.start()
        _sweep(store, 1)
        scheduler.wake()
        assert fake.launched.wait(10), "wake() did not make the loop tick"
        assert len(fake.launches) == 1
    finally:
        scheduler.stop(timeout=10)
    assert not scheduler.running


def _count_reaches(items: Sized, n: int) -> Callable[[], bool]:
    return lambda: len(items) == n


def test_an_ending_attempt_makes_the_loop_tick_at_once(
    store: Store, make_scheduler: Callable[..., Scheduler]
) -> None:
    """Dispatch is event-driven: with an hour between periodic ticks, each ended attempt
    alone makes the loop record it and launch the next trial into the freed slot."""
    fake = FakeLauncher(cpus=1)
    scheduler = make_scheduler(launcher=fake)
    sweep = _sweep(store, 3, max_concurrent=3)
    scheduler.start(interval=3600)
    try:
        scheduler.wake()  # the submit's wake-up; from here on only ended attempts wake it
        for n in (1, 2, 3):
            wait_until(_count_reaches(fake.launches, n), f"launch {n}", 10)
            fake.end(fake.launches[-1].trial_id, RunOutcome.SUCCEEDED)
        wait_until(
            lambda: all(t.status is TrialStatus.SUCCEEDED for t in _trials(store, sweep)),
            "every trial recorded as succeeded",
            10,
        )
        assert fake.max_in_flight == 1
    finally:
        scheduler.stop(timeout=10)
    assert fake._on_end is None  # stop() unhooks the scheduler from the launcher


# -- two schedulers, one PostgreSQL database ----------------------------------------------
@pytest.fixture
def pg_store(fresh_pg_url: str) -> Iterator[Store]:
    store = open_store(fresh_pg_url)
    try:
        yield store
    finally:
        store.close()


def test_two_schedulers_share_one_database(pg_store: Store, tmp_path: Path) -> None:
    store = pg_store
    project = store.projects.create("shared")
    sweeps = [_sweep(store, 20, max_concurrent=3, project_id=project.id) for _ in range(3)]
    all_ids = sorted(t.id for s in sweeps for t in _trials(store, s))
    ledger = Ledger()
    schedulers = [
        Scheduler(
            store,
            FakeLauncher(cpus=8, name=name, auto=RunOutcome.SUCCEEDED, ledger=ledger),
            database_url=store.db.url,
            checkpoint_root=tmp_path,
            scheduler_id=name,
        )
        for name in ("sched-1", "sched-2")
    ]

    def all_finished() -> bool:
        return all(
            store.sweeps.get(project.id, s.id).status is SweepStatus.FINISHED for s in sweeps
        )

    assert drive_together(schedulers, all_finished) == []
    assert all_finished()

    launched = sorted(trial for trial, _, _ in ledger.launches)
    assert launched == all_ids  # every trial launched exactly once, across both
    assert {who for _, _, who in ledger.launches} == {"sched-1", "sched-2"}
    assert all(attempt == 0 for _, attempt, _ in ledger.launches)
    assert max(ledger.max_running.values()) <= 3

    for sweep in sweeps:
        intervals = []
        for trial in _trials(store, sweep):
            assert trial.status is TrialStatus.SUCCEEDED
            events = store.trials.events(project.id, trial.id)
            assert _statuses([(e.status, e.detail) for e in events]) == [
                TrialStatus.QUEUED,
                TrialStatus.RUNNING,
                TrialStatus.SUCCEEDED,
            ]
            intervals.append((events[1].at, events[2].at))
        assert max_overlap(intervals) <= 3
