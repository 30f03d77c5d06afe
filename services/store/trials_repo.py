"""A project's trials: listed by sweep, read, cancelled, and their status events."""

from __future__ import annotations

import builtins

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.domain.errors import NotFound
from services.domain.records import Page, Trial, TrialEvent, TrialStatus
from services.store.db import Database
from services.store.ownership import require_sweep
from services.store.tables import TrialEventRow, TrialRow
from services.store.trial_rows import cancel_trial_row, trial_from_row


class TrialRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list(
        self,
        project_id: int,
        sweep_id: int,
        *,
        limit: int,
        offset: int,
        status: TrialStatus | None = None,
    ) -> Page[Trial]:
        with self._db.session() as s:
            require_sweep(s, project_id, sweep_id)
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

    def get(self, project_id: int, trial_id: int) -> Trial:
        with self._db.session() as s:
            return trial_from_row(self._get_row(s, project_id, trial_id))

    @staticmethod
    def _get_row(s: Session, project_id: int, trial_id: int) -> TrialRow:
        row = s.get(TrialRow, trial_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"trial {trial_id} not found")
        return row

    def cancel(self, project_id: int, trial_id: int) -> Trial:
        with self._db.session() as s:
            row = self._get_row(s, project_id, trial_id)
            cancel_trial_row(s, row)
            s.flush()
            return trial_from_row(row)

    def events(self, project_id: int, trial_id: int) -> builtins.list[TrialEvent]:
        with self._db.session() as s:
            self._get_row(s, project_id, trial_id)
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
