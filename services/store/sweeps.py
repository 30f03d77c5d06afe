"""Sweeps and their trials, always seen through a project."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.domain import Page, Sweep, SweepStatus, Trial, TrialEvent, TrialStatus
from services.errors import NotFound
from services.store.db import Database
from services.store.models import SweepRow, TrialEventRow, TrialRow, utcnow

# Methods whose trials are created one at a time as capacity frees (services.lazy_search);
# their sweep's max_trials is always set.
LAZY_METHODS = ("random", "bayes")


@dataclass(frozen=True)
class NewTrial:
    params: dict[str, Any]
    spec: dict[str, Any]
    max_restarts: int


@dataclass(frozen=True)
class NewSweep:
    name: str
    method: str
    spec: dict[str, Any]
    metric_name: str
    metric_goal: str
    max_trials: int | None
    max_concurrent: int


def _sweep(row: SweepRow, counts: dict[str, int]) -> Sweep:
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
    )


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
        kind=row.kind or "trained",
        stop_status=TrialStatus(row.stop_status) if row.stop_status else None,
        analyzed_step=row.analyzed_step,
        heartbeat_at=row.heartbeat_at,
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
            return _sweep(row, _counts(s, [row.id])[row.id])

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
            return Page(
                items=[_sweep(r, counts[r.id]) for r in rows],
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
                    _cancel_trial_row(s, trial)
            s.flush()
            return _sweep(row, _counts(s, [row.id])[row.id])

    def list_trials(
        self,
        project_id: int,
        sweep_id: int,
        *,
        limit: int,
        offset: int,
        status: TrialStatus | None = None,
    ) -> Page[Trial]:
        with self._db.session() as s:
            self._get_row(s, project_id, sweep_id)
            where = [TrialRow.sweep_id == sweep_id]
            if status is not None:
                where.append(TrialRow.status == status.value)
            total = s.scalar(select(func.count()).select_from(TrialRow).where(*where)) or 0
            rows = s.scalars(
                select(TrialRow).where(*where).order_by(TrialRow.number).limit(limit).offset(offset)
            )
            return Page(
                items=[trial_from_row(r) for r in rows], total=total, limit=limit, offset=offset
            )

    def get_trial(self, project_id: int, trial_id: int) -> Trial:
        with self._db.session() as s:
            return trial_from_row(self._get_trial_row(s, project_id, trial_id))

    @staticmethod
    def _get_trial_row(s: Session, project_id: int, trial_id: int) -> TrialRow:
        row = s.get(TrialRow, trial_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"trial {trial_id} not found")
        return row

    def cancel_trial(self, project_id: int, trial_id: int) -> Trial:
        with self._db.session() as s:
            row = self._get_trial_row(s, project_id, trial_id)
            _cancel_trial_row(s, row)
            s.flush()
            return trial_from_row(row)

    def trial_events(self, project_id: int, trial_id: int) -> builtins.list[TrialEvent]:
        with self._db.session() as s:
            self._get_trial_row(s, project_id, trial_id)
            rows = s.scalars(
                select(TrialEventRow)
                .where(TrialEventRow.trial_id == trial_id)
                .order_by(TrialEventRow.id)
            )
            return [
                TrialEvent(
                    trial_id=r.trial_id, status=TrialStatus(r.status), at=r.at, detail=r.detail
                )
                for r in rows
            ]


def _cancel_trial_row(s: Session, row: TrialRow) -> None:
    if row.status == TrialStatus.QUEUED.value:
        row.status = TrialStatus.CANCELLED.value
        row.finished_at = utcnow()
        record_event(s, row.id, TrialStatus.CANCELLED, "cancelled before it started")
    elif row.status == TrialStatus.RUNNING.value and not row.cancel_requested:
        # The scheduler owns running work: it stops the worker and records the final state.
        row.cancel_requested = True
