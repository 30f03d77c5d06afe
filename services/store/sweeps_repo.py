"""Sweeps, always seen through a project (their trials: trials_repo)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.domain.errors import NotFound
from services.domain.records import Page, Sweep, SweepStatus, TrialStatus
from services.domain.submissions import NewSweep, NewTrial
from services.store.db import Database
from services.store.tables import SweepRow, TrialRow, utcnow
from services.store.trial_rows import cancel_trial_row, insert_trials


def _sweep(row: SweepRow, counts: dict[str, int], waiting: str | None = None) -> Sweep:
    return Sweep(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        method=row.method,
        spec=row.spec,
        status=SweepStatus(row.status),
        metric_name=row.metric_name,
        metric_goal=row.metric_goal,
        max_trials=row.max_trials,
        max_concurrent=row.max_concurrent,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        trial_counts=counts,
        status_reason=row.status_reason or waiting,
    )


def _counts(s: Session, sweep_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {sid: {} for sid in sweep_ids}
    if not sweep_ids:
        return out
    rows = s.execute(
        select(TrialRow.sweep_id, TrialRow.status, func.count())
        .where(TrialRow.sweep_id.in_(sweep_ids))
        .group_by(TrialRow.sweep_id, TrialRow.status)
    )
    for sweep_id, status, n in rows:
        out[sweep_id][status] = n
    return out


def _waiting(s: Session, sweep_ids: Sequence[int]) -> dict[int, str]:
    """Why running sweeps' queued trials wait when no node has what they ask for: the
    count, and the reason of the oldest such trial."""
    if not sweep_ids:
        return {}
    waits = s.execute(
        select(TrialRow.sweep_id, func.count(), func.min(TrialRow.id))
        .where(
            TrialRow.sweep_id.in_(sweep_ids),
            TrialRow.status == TrialStatus.QUEUED.value,
            TrialRow.status_reason.is_not(None),
        )
        .group_by(TrialRow.sweep_id)
    ).all()
    if not waits:
        return {}
    reasons = dict(
        s.execute(
            select(TrialRow.id, TrialRow.status_reason).where(
                TrialRow.id.in_([first for _, _, first in waits])
            )
        ).all()
    )
    return {
        sweep_id: f"{n} queued trial{'s' if n > 1 else ''} {reasons[first]}"
        for sweep_id, n, first in waits
    }


class SweepRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, project_id: int, sweep: NewSweep, trials: Sequence[NewTrial]) -> Sweep:
        with self._db.session() as s:
            row = SweepRow(
                project_id=project_id,
                name=sweep.name,
                method=sweep.method,
                spec=sweep.spec,
                status=SweepStatus.RUNNING.value,
                metric_name=sweep.metric_name,
                metric_goal=sweep.metric_goal,
                max_trials=sweep.max_trials,
                max_concurrent=sweep.max_concurrent,
            )
            s.add(row)
            s.flush()
            insert_trials(s, row, trials, first_number=0)
            s.flush()
            return _sweep(row, _counts(s, [row.id])[row.id])

    @staticmethod
    def _get_row(s: Session, project_id: int, sweep_id: int) -> SweepRow:
        row = s.get(SweepRow, sweep_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"sweep {sweep_id} not found")
        return row

    def get(self, project_id: int, sweep_id: int) -> Sweep:
        with self._db.session() as s:
            row = self._get_row(s, project_id, sweep_id)
            return _sweep(row, _counts(s, [row.id])[row.id], _waiting(s, [row.id]).get(row.id))

    def list(
        self, project_id: int, *, limit: int, offset: int, status: SweepStatus | None = None
    ) -> Page[Sweep]:
        with self._db.session() as s:
            where = [SweepRow.project_id == project_id]
            if status is not None:
                where.append(SweepRow.status == status.value)
            total = s.scalar(select(func.count()).select_from(SweepRow).where(*where)) or 0
            rows = list(
                s.scalars(
                    select(SweepRow)
                    .where(*where)
                    .order_by(SweepRow.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            counts = _counts(s, [r.id for r in rows])
            waiting = _waiting(s, [r.id for r in rows])
            return Page(
                items=[_sweep(r, counts[r.id], waiting.get(r.id)) for r in rows],
                total=total,
                limit=limit,
                offset=offset,
            )

    def cancel(self, project_id: int, sweep_id: int) -> Sweep:
        """Cancel queued trials now; ask running ones to stop (the scheduler finishes them)."""
        with self._db.session() as s:
            row = self._get_row(s, project_id, sweep_id)
            if row.status == SweepStatus.RUNNING.value:
                row.status = SweepStatus.CANCELLED.value
                row.updated_at = row.finished_at = utcnow()
                for trial in s.scalars(select(TrialRow).where(TrialRow.sweep_id == sweep_id)):
                    cancel_trial_row(s, trial)
            s.flush()
            return _sweep(row, _counts(s, [row.id])[row.id])
