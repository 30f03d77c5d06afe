"""Light reads of where trials stand, for streams that poll them: a few columns per trial,
no specs or params (a 10,000-trial sweep polled twice a second stays cheap)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from services.domain.records import TrialStatus
from services.domain.trial_life import TrialProgress
from services.store.db import Database
from services.store.ownership import require_sweep, require_trial
from services.store.tables import MetricPointRow, TrialRow

_COLUMNS = (
    TrialRow.id,
    TrialRow.number,
    TrialRow.status,
    TrialRow.attempt,
    TrialRow.last_step,
    TrialRow.stop_reason,
    TrialRow.error,
)


class ProgressRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def of_sweep(self, project_id: int, sweep_id: int) -> list[TrialProgress]:
        """Every trial of the sweep, in id order."""
        with self._db.session() as s:
            require_sweep(s, project_id, sweep_id)
            return self._read(s, TrialRow.sweep_id == sweep_id)

    def of_trial(self, project_id: int, trial_id: int) -> list[TrialProgress]:
        with self._db.session() as s:
            require_trial(s, project_id, trial_id)
            return self._read(s, TrialRow.id == trial_id)

    @staticmethod
    def _read(s: Session, where: ColumnElement[bool]) -> list[TrialProgress]:
        rows = s.execute(select(*_COLUMNS).where(where).order_by(TrialRow.id)).all()
        return [
            TrialProgress(
                id=r.id,
                number=r.number,
                status=TrialStatus(r.status),
                attempt=r.attempt,
                last_step=r.last_step,
                stop_reason=r.stop_reason,
                error=r.error,
            )
            for r in rows
        ]

    def top_step(self, project_id: int, trial_id: int, names: Sequence[str]) -> int | None:
        """The highest step any of `names` reached (an index probe per name), or None."""
        top: int | None = None
        with self._db.session() as s:
            require_trial(s, project_id, trial_id)
            for name in names:
                step = s.scalar(
                    select(func.max(MetricPointRow.step)).where(
                        MetricPointRow.trial_id == trial_id, MetricPointRow.name == name
                    )
                )
                if step is not None and (top is None or step > top):
                    top = int(step)
        return top
