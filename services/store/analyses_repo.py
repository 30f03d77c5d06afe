"""Cached trial diagnoses: the latest analysis of each trial, keyed by the step it saw.

The live analyzer writes one after each pass over a trial; a sweep's analysis reads them
all in one query instead of re-reading every series. A cached analysis is current when its
`analyzed_step` equals the trial's `last_step` and the trial's status has not changed since.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.domain.records import CachedAnalysis, TrialStatus
from services.store.db import Database
from services.store.tables import TrialRow

_COLUMNS = (
    TrialRow.id,
    TrialRow.status,
    TrialRow.last_step,
    TrialRow.analyzed_step,
    TrialRow.analysis,
)


def _cached(r: Any) -> CachedAnalysis:
    return CachedAnalysis(
        trial_id=r.id,
        status=TrialStatus(r.status),
        last_step=r.last_step,
        analyzed_step=r.analyzed_step,
        analysis=r.analysis,
    )


class AnalysisRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def for_sweep(self, project_id: int, sweep_id: int) -> list[CachedAnalysis]:
        """Every trial of the sweep with its cached analysis (or None), in trial order."""
        with self.db.session() as s:
            rows = s.execute(
                select(*_COLUMNS)
                .where(TrialRow.project_id == project_id, TrialRow.sweep_id == sweep_id)
                .order_by(TrialRow.number)
            ).all()
        return [_cached(r) for r in rows]

    def get(self, project_id: int, trial_id: int) -> CachedAnalysis | None:
        with self.db.session() as s:
            r = s.execute(
                select(*_COLUMNS).where(TrialRow.project_id == project_id, TrialRow.id == trial_id)
            ).first()
        return None if r is None else _cached(r)
