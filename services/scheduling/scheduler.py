"""The scheduler: claims queued trials, hands them to a launcher, and records how they end.

The store, not the launcher, says what should be running. Each tick applies the launcher's
reports (a trial that ends at its sweep's metric target ends the sweep: `sweep_target`),
escalates cancels that a worker did not honour, requeues running trials whose
heartbeat stopped (their worker or their scheduler died), launches what fits, and closes
finished sweeps. Any number of schedulers may share one database: claims are atomic and
every change to a running trial is fenced on its attempt. Settling `lr: auto` sweeps and
giving up silent external runs are no part of it: services.scheduling.housekeeping does those.

The background loop (services.background) is event-driven: an ended attempt (the
launcher's on_end) or wake() runs a short pass at once (record reports, launch into the
freed room); the rest of a tick (cancels, leases, finished sweeps) runs every `interval`
seconds while attempts are in flight or a pass changed something, less often while idle.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.background import BackgroundLoop
from services.domain.capacity import ClusterCapacity
from services.domain.records import Trial, TrialStatus
from services.domain.trial_life import CANCELLED_BY_REQUEST
from services.scheduling.launcher import Assignment, Launcher, RunOutcome, RunReport
from services.store import Store
from services.sweeps.failure_stop import stop_failing_sweeps
from services.sweeps.lazy_trials import ask_next_trial
from services.sweeps.sweep_target import end_sweeps_at_target

log = logging.getLogger("lrlab.scheduler")

HEARTBEAT_LOST = "worker heartbeat lost"
# Every trial asks for some CPU (Resources.cpus > 0) and Ray counts in units of 1e-4: a
# launcher without this much free CPU has room for no trial, so no claim is tried.
_ANY_CPU = 1e-4


@dataclass(frozen=True)
class TickResult:
    """What one tick did."""

    launched: int = 0
    succeeded: int = 0
    failed: int = 0
    pruned: int = 0
    cancelled: int = 0
    requeued: int = 0
    force_cancelled: int = 0  # launcher.cancel calls after the grace period
    sweeps_finished: int = 0
    sweeps_stopped: int = 0  # ended `failed` by their failure_policy
    ignored: int = 0  # reports about attempts no longer running (the fence refused them)

    @property
    def changed_trials(self) -> bool:
        """Whether a trial started or ended, or a sweep finished."""
        ended = self.succeeded + self.failed + self.pruned + self.cancelled + self.requeued
        return self.launched + ended + self.sweeps_finished + self.sweeps_stopped > 0


def trial_resources(spec: Mapping[str, Any]) -> tuple[float, float]:
    """(cpus, gpus) of a stored TrialSpec; the defaults match specs.trial.Resources."""
    resources = spec.get("resources") or {}
    return float(resources.get("cpus", 1.0)), float(resources.get("gpus", 0.0))


class _Tally:
    """What one pass did: counts for its TickResult, and the trials that failed in it
    (their sweeps' failure policies are checked before anything else is launched)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failed: list[int] = []

    def add(self, trial_id: int, status: TrialStatus) -> None:
        self.counts["requeued" if status is TrialStatus.QUEUED else status.value] += 1
        if status is TrialStatus.FAILED:
            self.failed.append(trial_id)


def default_scheduler_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


class Scheduler:
    def __init__(
        self,
        store: Store,
        launcher: Launcher,
        *,
        database_url: str,
        checkpoint_root: Path,
        scheduler_id: str | None = None,
        lease_seconds: float = 30.0,
        cancel_grace_seconds: float = 5.0,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        cluster_may_grow: bool = False,
    ) -> None:
        """`on_change` is called after a pass in which a trial started or ended or a sweep
        finished (the wake-up of the loops that act on those). `cluster_may_grow`: nodes
        may join by themselves (an autoscaling cluster), so a trial no node has room for
        waits for one rather than being refused at submission."""
        self.id = scheduler_id or default_scheduler_id()
        self._store = store
        self._states = store.trial_states
        self._launcher = launcher
        self._database_url = database_url
        self._checkpoint_root = Path(checkpoint_root)
        self._lease = lease_seconds
        self._grace = cancel_grace_seconds
        self._on_change = on_change or (lambda: None)
        self._clock = clock
        self._pending: list[RunReport] = []  # reports a failed tick could not record yet
        self._cancel_seen: dict[tuple[int, int], float] = {}  # (trial, attempt) -> clock
        self._force_cancelled: set[tuple[int, int]] = set()
        self._tick_lock = threading.Lock()
        self._loop = BackgroundLoop(f"scheduler {self.id}", self._loop_tick)
        self._interval = 0.0
        self._last_full = -math.inf
        self._may_grow = cluster_may_grow
        self._capacity: ClusterCapacity | None = None

    # -- one pass ----------------------------------------------------------------------
    def tick(self) -> TickResult:
        """One full pass: reports, cancels, leases, launches, finished sweeps."""
        return self._pass(full=True)

    def _pass(self, *, full: bool) -> TickResult:
        result = self._locked_pass(full=full)
        if result.changed_trials:
            self._on_change()
        return result

    def _locked_pass(self, *, full: bool) -> TickResult:
        with self._tick_lock:
            tally = _Tally()
            # Taken before poll(): an attempt missing from it has ended, so its report is in
            # this poll and the lease check cannot mistake it for a vanished worker.
            in_flight = self._launcher.running()
            self._apply_reports(tally)
            if full:
                self._refresh_capacity()
                self._escalate_cancels(in_flight, tally.counts)
                self._requeue_stale(in_flight, tally)
            self._stop_failing(tally)  # before a stopped sweep's queued trials could launch
            self._launch_queued(tally)
            self._stop_failing(tally)
            if full:
                tally.counts["sweeps_finished"] += len(self._states.finish_sweeps())
            return TickResult(**tally.counts)

    def _stop_failing(self, tally: _Tally) -> None:
        """Sweeps whose trials keep failing end `failed` (their failure_policy)."""
        if tally.failed:
            tally.counts["sweeps_stopped"] += len(stop_failing_sweeps(self._store, tally.failed))
            tally.failed = []

    def _apply_reports(self, tally: _Tally) -> None:
        reports, self._pending = [*self._pending, *self._launcher.poll()], []
        ended: list[int] = []  # trials that ended with their metric evaluated
        for i, report in enumerate(reports):
            try:
                status = self._apply(report)
            except Exception:
                self._pending = reports[i:]  # recorded next tick; the store may be back
                raise
            self._forget_cancel(report.trial_id, report.attempt)
            if status is None:
                log.info(
                    "ignored %s report of trial %s attempt %s: attempt no longer running",
                    report.outcome.value,
                    report.trial_id,
                    report.attempt,
                )
                tally.counts["ignored"] += 1
            else:
                tally.add(report.trial_id, status)
                if status in (TrialStatus.SUCCEEDED, TrialStatus.PRUNED):
                    ended.append(report.trial_id)
        # Before this pass launches anything: a sweep at its target makes no new trials.
        tally.counts["sweeps_finished"] += len(end_sweeps_at_target(self._store, ended))

    def _apply(self, report: RunReport) -> TrialStatus | None:
        """Record one report; the status it led to, or None when the fence refused it."""
        states, trial, attempt = self._states, report.trial_id, report.attempt
        if report.outcome is RunOutcome.LOST:
            # A trial that was asked to stop is cancelled rather than requeued (in the store).
            reason = report.error or report.detail or "worker lost"
            return states.requeue_or_fail(trial, attempt, reason)
        error = traceback = None
        stop_reason = report.detail
        if report.outcome is RunOutcome.SUCCEEDED:
            status = TrialStatus.SUCCEEDED
        elif report.outcome is RunOutcome.DIVERGED:
            status, stop_reason = TrialStatus.PRUNED, report.detail or "diverged"
        elif report.outcome is RunOutcome.CANCELLED:
            status, stop_reason = TrialStatus.CANCELLED, CANCELLED_BY_REQUEST
        else:
            status = TrialStatus.FAILED
            error, traceback = report.error or report.detail or "failed", report.traceback
        return states.finish(
            trial,
            attempt,
            status,
            stop_reason=stop_reason,
            error=error,
            traceback=traceback,
            last_step=report.last_step,
        )

    def _escalate_cancels(self, in_flight: set[int], counts: Counter[str]) -> None:
        """A worker sees the cancel flag in its heartbeat reply and stops by itself; one that
        has not reported within the grace period is stopped by force, once per attempt."""
        now, flagged = self._clock(), set()
        for trial in self._states.running(owner=self.id):
            if not trial.cancel_requested or trial.id not in in_flight:
                continue
            key = (trial.id, trial.attempt)
            flagged.add(key)
            first_seen = self._cancel_seen.setdefault(key, now)
            if now - first_seen >= self._grace and key not in self._force_cancelled:
                waited = now - first_seen
                log.info(
                    "trial %s ignored its cancel flag for %.1fs; stopping it", trial.id, waited
                )
                self._launcher.cancel(trial.id)
                self._force_cancelled.add(key)
                counts["force_cancelled"] += 1
        self._cancel_seen = {k: v for k, v in self._cancel_seen.items() if k in flagged}
        self._force_cancelled &= flagged

    def _forget_cancel(self, trial_id: int, attempt: int) -> None:
        self._cancel_seen.pop((trial_id, attempt), None)
        self._force_cancelled.discard((trial_id, attempt))

    def _requeue_stale(self, in_flight: set[int], tally: _Tally) -> None:
        """Running trials nobody heartbeats for: their worker, or the scheduler that launched
        them, died. Requeued from their checkpoint (or failed when out of restarts)."""
        for trial in self._states.stale_running(self._lease):
            if trial.id in in_flight:
                continue
            status = self._states.requeue_or_fail(trial.id, trial.attempt, HEARTBEAT_LOST)
            if status is not None:
                log.warning(
                    "trial %s attempt %s: %s -> %s",
                    trial.id,
                    trial.attempt,
                    HEARTBEAT_LOST,
                    status.value,
                )
                tally.add(trial.id, status)

    def _launch_queued(self, tally: _Tally) -> None:
        while self._launcher.can_start(_ANY_CPU, 0.0):
            trial = self._states.claim_next(self.id, self._fits, waits=self._waits)
            if trial is None:
                # Nothing queued fits the room: a lazy sweep (random, bayes) with room of
                # its own asks for its next trial now, knowing every trial ended so far.
                asked = ask_next_trial(self._store)
                if asked is not None and asked.status is TrialStatus.FAILED:
                    # Born failed (its params made no valid trial): not counted as a trial
                    # that ran, but its sweep's failure policy hears of it.
                    tally.failed.append(asked.id)
                if asked is None or asked.status is not TrialStatus.QUEUED:
                    break  # none asked, or it failed at birth: no tight loop of failures
                continue
            cpus, gpus = trial_resources(trial.spec)
            assignment = Assignment(
                trial_id=trial.id,
                sweep_id=trial.sweep_id,
                project_id=trial.project_id,
                attempt=trial.attempt,
                spec=trial.spec,
                database_url=self._database_url,
                checkpoint_dir=self._checkpoint_root / f"trial-{trial.id}",
                cpus=cpus,
                gpus=gpus,
            )
            try:
                self._launcher.launch(assignment)
            except Exception as exc:
                log.exception("launching trial %s attempt %s failed", trial.id, trial.attempt)
                reason = f"launch failed: {exc}"
                status = self._states.requeue_or_fail(trial.id, trial.attempt, reason)
                if status is not None:
                    tally.add(trial.id, status)
                break  # the launcher is unwell: try again next tick, not in a tight loop
            tally.counts["launched"] += 1

    def _fits(self, trial: Trial) -> bool:
        # A trial no node holds is never launched: Ray would hold it pending forever.
        return self._shortfall(trial) is None and self._launcher.can_start(
            *trial_resources(trial.spec)
        )

    # -- what the cluster offers -------------------------------------------------------
    @property
    def capacity(self) -> ClusterCapacity | None:
        """The cluster's nodes as last seen (None until known): the API reads it to refuse
        work no node of a fixed cluster can run."""
        return self._capacity

    def _refresh_capacity(self) -> None:
        nodes = self._launcher.nodes()
        capacity = None if nodes is None else ClusterCapacity(tuple(nodes), self._may_grow)
        if capacity == self._capacity:
            return
        self._capacity = capacity
        # Trials that waited for a node may fit now (or wait for another reason): each is
        # judged again at its next claim.
        cleared = self._states.clear_waiting()
        log.info(
            "cluster nodes: %s%s; %d waiting trial(s) to judge again",
            "unknown" if capacity is None else [str(n) for n in capacity.nodes],
            " (may grow)" if self._may_grow else "",
            cleared,
        )

    def _shortfall(self, trial: Trial) -> str | None:
        capacity = self._capacity
        return None if capacity is None else capacity.shortfall(*trial_resources(trial.spec))

    def _waits(self, trial: Trial) -> str | None:
        """Why the trial cannot start on any node of the cluster as it is, or None (said
        in the log once: the store leaves the trial out of claims from then on)."""
        why = self._shortfall(trial)
        if why is None:
            return None
        until = "the cluster grows" if self._may_grow else "a node that has them joins"
        reason = f"waiting: {why}; it starts once {until}"
        log.warning("trial %s of sweep %s is %s", trial.id, trial.sweep_id, reason)
        return reason

    # -- background loop ---------------------------------------------------------------
    def start(self, interval: float = 0.25, idle_interval: float | None = None) -> None:
        """Tick in a daemon thread: at once when an attempt ends (the launcher says so) or
        wake() is called, else every `interval` seconds (leases, cancel escalation) while
        attempts are in flight, backing off to `idle_interval` (default: no back-off)
        while there is nothing to do."""
        if self.running:  # checked first: the running loop reads the interval
            raise RuntimeError("the scheduler is already running")
        self._interval, self._last_full = interval, -math.inf
        self._loop.start(interval, idle_interval)
        self._launcher.on_end(self.wake)

    @property
    def running(self) -> bool:
        return self._loop.running

    def wake(self) -> None:
        """Tick now (new trials were queued, a cancel was requested, ...)."""
        self._loop.wake()

    def stop(self, timeout: float | None = None) -> None:
        self._launcher.on_end(None)
        self._loop.stop(timeout)

    def _loop_tick(self) -> bool:
        """A full pass when `interval` has passed since the last, else a short one (woken
        by an ended attempt); whether there was anything to do."""
        started = time.monotonic()
        full = started - self._last_full >= self._interval
        if full:
            self._last_full = started  # a pass that raises counts too: no tight retries
        result = self._pass(full=full)
        return result != TickResult() or bool(self._launcher.running())
