"""Trial state transitions that the scheduler and the workers drive.

Each method is one transaction. Changes to a running trial are fenced on (status running,
attempt): whoever acts on an attempt that has since been requeued or finished changes
nothing, and learns so from the return value. Every status change records a trial event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from services.domain.kinds import LAZY_METHODS, TrialKind
from services.domain.records import SweepStatus, Trial, TrialStatus
from services.domain.trial_life import CANCELLED_BY_REQUEST, Heartbeat
from services.store.db import Database
from services.store.tables import SweepRow, TrialRow, utcnow
from services.store.trial_rows import record_event, trial_from_row

_QUEUED = TrialStatus.QUEUED.value
_RUNNING = TrialStatus.RUNNING.value


@contextmanager
def write_transaction(db: Database) -> Iterator[Session]:
    """A write transaction. On SQLite, BEGIN IMMEDIATE takes the database's write lock up
    front: read-then-write steps are serialised across threads and processes, as row locks
    serialise them on PostgreSQL, and never fail on a stale read snapshot."""
    with db.session() as s:
        if not db.is_postgres:
            conn = s.connection()
            # pysqlite opens transactions lazily (before the first write), so a fresh
            # session has none yet; the check keeps a driver that opens one eagerly safe.
            if not getattr(conn.connection.dbapi_connection, "in_transaction", False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield s


class TrialStateRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with write_transaction(self._db) as s:
            yield s

    # -- the scheduler's side ----------------------------------------------------------
    def claim_next(
        self,
        owner: str,
        accept: Callable[[Trial], bool],
        scan: int = 32,
        waits: Callable[[Trial], str | None] | None = None,
    ) -> Trial | None:
        """Move the oldest queued trial that `accept`s and whose sweep has room to running.

        Looks at up to `scan` candidates, so a trial that does not fit the cluster (say,
        a GPU trial while the GPUs are busy) does not block smaller ones behind it. A
        candidate refused for which `waits` gives a reason (no node has what it asks for)
        keeps it as its status_reason and is left out of later scans until
        `clear_waiting`, so that such trials never fill the scan window."""
        with self._write() as s:
            candidates = s.scalars(_candidates(scan)).all()
            has_room: dict[int, bool] = {}
            for row in candidates:
                if row.sweep_id not in has_room:
                    has_room[row.sweep_id] = _sweep_has_room(s, row.sweep_id)
                if not has_room[row.sweep_id]:
                    continue
                trial = trial_from_row(row)
                if not accept(trial):
                    reason = None if waits is None else waits(trial)
                    if reason is not None:
                        row.status_reason = reason
                        record_event(s, row.id, TrialStatus.QUEUED, reason)
                    continue
                now = utcnow()
                row.status = _RUNNING
                row.status_reason = None
                row.owner = owner
                row.worker = None
                row.heartbeat_at = now
                if row.started_at is None:  # a restart keeps the first start time
                    row.started_at = now
                verb = "started" if row.attempt == 0 else "restarted"
                record_event(
                    s, row.id, TrialStatus.RUNNING, f"attempt {row.attempt} {verb} by {owner}"
                )
                s.flush()
                return trial_from_row(row)
            return None

    def clear_waiting(self) -> int:
        """Forget why queued trials wait (the cluster changed: each is judged again at its
        next claim); how many were waiting."""
        with self._write() as s:
            cleared = s.execute(
                update(TrialRow)
                .where(TrialRow.status == _QUEUED, TrialRow.status_reason.is_not(None))
                .values(status_reason=None)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(cleared, "rowcount", 0) or 0)

    def requeue_or_fail(self, trial_id: int, attempt: int, reason: str) -> TrialStatus | None:
        """The attempt's worker is gone: queue the trial again (it resumes from its last
        checkpoint) while restarts remain, else fail it. A trial asked to stop is
        cancelled instead. None when the fence did not match."""
        with self._write() as s:
            row = _fenced(s, trial_id, attempt)
            if row is None:
                return None
            if row.cancel_requested:  # (pruned instead when a policy asked for the stop)
                return _terminate(s, row, TrialStatus.CANCELLED, stop_reason=CANCELLED_BY_REQUEST)
            if row.attempt < row.max_restarts:
                row.attempt += 1
                row.status = _QUEUED
                row.owner = row.worker = None
                row.heartbeat_at = None
                record_event(
                    s, row.id, TrialStatus.QUEUED, f"requeued (attempt {row.attempt}): {reason}"
                )
                return TrialStatus.QUEUED
            error = f"gave up after {row.attempt} restarts: {reason}"
            _terminate(s, row, TrialStatus.FAILED, error=error)
            return TrialStatus.FAILED

    def finish(
        self,
        trial_id: int,
        attempt: int,
        status: TrialStatus,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
        traceback: str | None = None,
        last_step: int | None = None,
    ) -> TrialStatus | None:
        """End a running attempt in a terminal status; the status it ended in (a cancel that
        a policy asked for ends as the policy's status), None when the fence did not match."""
        if not status.is_terminal:
            raise ValueError(f"finish needs a terminal status, not {status.value!r}")
        with self._write() as s:
            row = _fenced(s, trial_id, attempt)
            if row is None:
                return None
            if last_step is not None:
                row.last_step = last_step
            return _terminate(
                s, row, status, stop_reason=stop_reason, error=error, traceback=traceback
            )

    def finish_sweeps(self) -> list[int]:
        """Mark running sweeps whose trials are all terminal (and that have any) finished;
        a lazy sweep (random, bayes) also needs all of its max_trials asked for."""
        with self._write() as s:
            live = exists().where(
                TrialRow.sweep_id == SweepRow.id, TrialRow.status.in_([_QUEUED, _RUNNING])
            )
            any_trial = exists().where(TrialRow.sweep_id == SweepRow.id)
            asked = (
                select(func.count())
                .where(TrialRow.sweep_id == SweepRow.id)
                .correlate(SweepRow)
                .scalar_subquery()
            )
            # A lazy sweep between two trials has none live, yet more to ask for.
            all_asked = SweepRow.method.not_in(LAZY_METHODS) | (asked >= SweepRow.max_trials)
            rows = s.scalars(
                select(SweepRow)
                .where(SweepRow.status == SweepStatus.RUNNING.value, any_trial, ~live, all_asked)
                .order_by(SweepRow.id)
                # A sweep being cancelled or claimed from right now is finished next time.
                .with_for_update(skip_locked=True)
            ).all()
            now = utcnow()
            for row in rows:
                row.status = SweepStatus.FINISHED.value
                row.finished_at = row.updated_at = now
            return [row.id for row in rows]

    def end_sweep(
        self,
        sweep_id: int,
        reason: str,
        *,
        status: SweepStatus = SweepStatus.FINISHED,
        trial_reason: str | None = None,
    ) -> bool:
        """End a running sweep now in `status`, saying why (its metric target reached; its
        trials kept failing): its queued trials are cancelled with `trial_reason` (else the
        sweep's), and no trial is claimed from it or asked for it any more (both want a
        running sweep); running trials go on to their end. False when the sweep is not
        running (it ended, or was cancelled, meanwhile)."""
        with self._write() as s:
            row = s.scalars(
                select(SweepRow)
                .where(SweepRow.id == sweep_id, SweepRow.status == SweepStatus.RUNNING.value)
                .with_for_update()
            ).one_or_none()
            if row is None:
                return False
            row.status = status.value
            row.finished_at = row.updated_at = utcnow()
            row.status_reason = reason
            queued = select(TrialRow).where(
                TrialRow.sweep_id == sweep_id, TrialRow.status == _QUEUED
            )
            for trial in s.scalars(queued.with_for_update()):
                trial.status_reason = None  # no longer waits for anything
                _terminate(s, trial, TrialStatus.CANCELLED, stop_reason=trial_reason or reason)
            return True

    # -- a policy's side (the live analyzer) -------------------------------------------
    def request_stop(
        self, trial_id: int, attempt: int, reason: str, status: TrialStatus = TrialStatus.PRUNED
    ) -> bool:
        """Ask a running attempt to stop and end as `status` with `reason` (a finding, in
        words): the worker sees the cancel flag on its next heartbeat, and the end it
        reports as cancelled is recorded as `status` instead. False when the attempt is no
        longer running, a stop was already asked for (a user's cancel wins), or the trial
        is an external run (no worker to stop)."""
        if not status.is_terminal:
            raise ValueError(f"a stop needs a terminal status, not {status.value!r}")
        with self._write() as s:
            row = _fenced(s, trial_id, attempt)
            if row is None or row.cancel_requested or row.kind != TrialKind.TRAINED:
                return False
            row.cancel_requested = True
            row.stop_status = status.value
            row.stop_reason = reason
            return True

    # -- the worker's side -------------------------------------------------------------
    def attach_worker(
        self, trial_id: int, attempt: int, worker: str, note: str | None = None
    ) -> bool:
        """Record which worker (process, node) runs the attempt, and what it says about how
        it runs it (say, on CPU for want of CUDA) as a running event."""
        with self._write() as s:
            row = _fenced(s, trial_id, attempt)
            if row is None:
                return False
            row.worker = worker
            row.heartbeat_at = utcnow()
            if note is not None:
                record_event(s, row.id, TrialStatus.RUNNING, note)
            return True

    def heartbeat(self, trial_id: int, attempt: int, last_step: int | None) -> Heartbeat:
        """Renew the attempt's lease. alive False tells a stale worker to stop."""
        # One fenced UPDATE ... RETURNING: sent every second by every running trial, so no
        # ORM load and no lock held across round trips.
        values: dict[str, object] = {"heartbeat_at": utcnow()}
        if last_step is not None:
            values["last_step"] = last_step
        renew = (
            update(TrialRow)
            .where(
                TrialRow.id == trial_id,
                TrialRow.status == _RUNNING,
                TrialRow.attempt == attempt,
            )
            .values(values)
            .returning(TrialRow.cancel_requested)
            .execution_options(synchronize_session=False)
        )
        with self._db.session() as s:
            cancel = s.execute(renew).scalar_one_or_none()
            if cancel is not None:
                return Heartbeat(alive=True, cancel_requested=cancel)
            stale = s.scalar(select(TrialRow.cancel_requested).where(TrialRow.id == trial_id))
            return Heartbeat(alive=False, cancel_requested=bool(stale))

    # -- reads -------------------------------------------------------------------------
    def get(self, trial_id: int) -> Trial | None:
        with self._db.session() as s:
            row = s.get(TrialRow, trial_id)
            return None if row is None else trial_from_row(row)

    def running(self, owner: str | None = None) -> list[Trial]:
        with self._db.session() as s:
            query = select(TrialRow).where(TrialRow.status == _RUNNING)
            if owner is not None:
                query = query.where(TrialRow.owner == owner)
            return [trial_from_row(r) for r in s.scalars(query.order_by(TrialRow.id))]

    def stale_running(self, older_than_seconds: float, now: datetime | None = None) -> list[Trial]:
        """Running trials whose last heartbeat (or claim) is older than the cutoff."""
        cutoff = (now or utcnow()).astimezone(UTC) - timedelta(seconds=older_than_seconds)
        with self._db.session() as s:
            rows = s.scalars(
                select(TrialRow)
                .where(
                    TrialRow.status == _RUNNING,
                    TrialRow.kind == TrialKind.TRAINED,  # external runs have no worker to lose
                    TrialRow.heartbeat_at.is_(None) | (TrialRow.heartbeat_at < cutoff),
                )
                .order_by(TrialRow.id)
            )
            return [trial_from_row(r) for r in rows]


def _candidates(scan: int) -> Select[TrialRow]:
    """Queued trials of running sweeps, oldest first, locked without waiting on PostgreSQL
    (FOR UPDATE OF trials SKIP LOCKED): concurrent claimers take disjoint candidates."""
    other = aliased(TrialRow)
    running = (
        select(func.count())
        .where(other.sweep_id == TrialRow.sweep_id, other.status == _RUNNING)
        .correlate(TrialRow)
        .scalar_subquery()
    )
    return (
        select(TrialRow)
        .join(SweepRow, SweepRow.id == TrialRow.sweep_id)
        .where(
            TrialRow.status == _QUEUED,
            TrialRow.kind
            == TrialKind.TRAINED,  # an external run is logged from elsewhere, never run
            TrialRow.cancel_requested.is_(False),
            TrialRow.status_reason.is_(None),  # waits for a node no cluster has (yet)
            SweepRow.status == SweepStatus.RUNNING.value,
            # Leaves out full sweeps, so their backlog cannot fill the scan window and starve
            # other sweeps. Only a hint: the count under the sweep's lock decides.
            running < SweepRow.max_concurrent,
        )
        .order_by(TrialRow.id)
        .limit(scan)
        .with_for_update(of=TrialRow, skip_locked=True)
    )


def _sweep_has_room(s: Session, sweep_id: int) -> bool:
    """Whether the sweep runs fewer trials than its max_concurrent, counted under the sweep
    row's lock so two claimers never both take its last slot. SKIP LOCKED: a sweep that
    another claimer holds is skipped for now (never waited on, so claims cannot deadlock
    with each other or with a sweep being cancelled)."""
    sweep = s.scalars(
        select(SweepRow)
        .where(SweepRow.id == sweep_id, SweepRow.status == SweepStatus.RUNNING.value)
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if sweep is None:
        return False
    running = s.scalar(
        select(func.count())
        .select_from(TrialRow)
        .where(TrialRow.sweep_id == sweep_id, TrialRow.status == _RUNNING)
    )
    return int(running or 0) < sweep.max_concurrent


def _fenced(s: Session, trial_id: int, attempt: int) -> TrialRow | None:
    """The trial's row, locked, if that attempt is the one running now."""
    row = s.scalars(select(TrialRow).where(TrialRow.id == trial_id).with_for_update()).one_or_none()
    if row is None or row.status != _RUNNING or row.attempt != attempt:
        return None
    return row


def _terminate(
    s: Session,
    row: TrialRow,
    status: TrialStatus,
    *,
    stop_reason: str | None = None,
    error: str | None = None,
    traceback: str | None = None,
) -> TrialStatus:
    """End the row in `status`; the status it ended in (a policy's stop turns the end of a
    cancelled attempt into its own status and reason)."""
    if status is TrialStatus.CANCELLED and row.stop_status is not None:
        status, stop_reason = TrialStatus(row.stop_status), row.stop_reason
    row.status = status.value
    row.finished_at = utcnow()
    row.stop_reason = stop_reason
    row.error = error
    row.traceback = traceback
    detail = stop_reason or error or f"attempt {row.attempt} {status.value}"
    record_event(s, row.id, status, detail)
    return status
