"""Row-level steps on trials that several repositories share: building the record,
queueing new trials with their event, recording an event, cancelling one trial."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from services.domain.kinds import TrialKind
from services.domain.records import Trial, TrialStatus
from services.domain.submissions import NewTrial
from services.store.tables import SweepRow, TrialEventRow, TrialRow, utcnow


def trial_from_row(row: TrialRow) -> Trial:
    return Trial(
        id=row.id,
        sweep_id=row.sweep_id,
        project_id=row.project_id,
        number=row.number,
        status=TrialStatus(row.status),
        params=row.params,
        spec=row.spec,
        attempt=row.attempt,
        max_restarts=row.max_restarts,
        cancel_requested=row.cancel_requested,
        error=row.error,
        traceback=row.traceback,
        worker=row.worker,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        owner=row.owner,
        stop_reason=row.stop_reason,
        last_step=row.last_step,
        kind=TrialKind(row.kind or TrialKind.TRAINED),
        stop_status=TrialStatus(row.stop_status) if row.stop_status else None,
        analyzed_step=row.analyzed_step,
        heartbeat_at=row.heartbeat_at,
        status_reason=row.status_reason,
    )


def record_event(s: Session, trial_id: int, status: TrialStatus, detail: str | None = None) -> None:
    s.add(TrialEventRow(trial_id=trial_id, status=status.value, detail=detail))


def insert_trials(
    s: Session, sweep: SweepRow, trials: Sequence[NewTrial], first_number: int
) -> list[TrialRow]:
    """Queue `trials` in `sweep`, numbered from `first_number`, each with its event."""
    rows = [
        TrialRow(
            sweep_id=sweep.id,
            project_id=sweep.project_id,
            number=first_number + i,
            status=TrialStatus.QUEUED.value,
            params=t.params,
            spec=t.spec,
            attempt=0,
            max_restarts=t.max_restarts,
            cancel_requested=False,
        )
        for i, t in enumerate(trials)
    ]
    s.add_all(rows)
    s.flush()
    for r in rows:
        record_event(s, r.id, TrialStatus.QUEUED)
    return rows


def cancel_trial_row(s: Session, row: TrialRow) -> None:
    if row.status == TrialStatus.QUEUED.value:
        row.status = TrialStatus.CANCELLED.value
        row.status_reason = None  # what it waited for no longer matters
        row.finished_at = utcnow()
        record_event(s, row.id, TrialStatus.CANCELLED, "cancelled before it started")
    elif row.status == TrialStatus.RUNNING.value and not row.cancel_requested:
        # The scheduler owns running work: it stops the worker and records the final state.
        row.cancel_requested = True
