"""Sweeps that wait before their first trial: running, with no trial yet.

A sweep with `lr: auto` waits for its range test; once that has ended, its space is
settled: the sweep's stored spec is replaced by one with the lr's parameter filled in,
and a grid's trials are queued in the same transaction. The transaction holds the sweep's
row lock and checks that the sweep still runs and still has no trial, so any number of
servers settle a sweep once, and a restart never settles it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select

from services.domain.records import SweepStatus
from services.domain.submissions import NewTrial
from services.store.db import Database
from services.store.tables import SweepRow, TrialRow, utcnow
from services.store.trial_rows import insert_trials
from services.store.trial_states_repo import write_transaction

__all__ = ["PendingSweepRepository"]

_RUNNING = SweepStatus.RUNNING.value


class PendingSweepRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def waiting(self, limit: int = 100) -> list[tuple[int, int, dict[str, Any]]]:
        """(sweep id, project id, stored spec) of running sweeps without a trial, oldest
        first (a lazy sweep between its start and its first ask is one too)."""
        any_trial = exists().where(TrialRow.sweep_id == SweepRow.id)
        with self._db.session() as s:
            rows = s.execute(
                select(SweepRow.id, SweepRow.project_id, SweepRow.spec)
                .where(SweepRow.status == _RUNNING, ~any_trial)
                .order_by(SweepRow.id)
                .limit(limit)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def settle(
        self,
        sweep_id: int,
        spec: dict[str, Any],
        trials: Sequence[NewTrial] = (),
        *,
        cancel: bool = False,
    ) -> bool:
        """Store the sweep's settled spec and queue `trials`; with `cancel`, end the sweep
        cancelled instead (nothing can run). False, and nothing changed, when the sweep no
        longer runs, already has trials, or another server is settling it now."""
        with write_transaction(self._db) as s:
            row = s.scalars(
                select(SweepRow)
                .where(SweepRow.id == sweep_id, SweepRow.status == _RUNNING)
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if row is None or s.scalar(select(exists().where(TrialRow.sweep_id == sweep_id))):
                return False
            row.spec = spec
            row.updated_at = utcnow()
            if cancel:
                row.status = SweepStatus.CANCELLED.value
                row.finished_at = row.updated_at
            elif trials:
                insert_trials(s, row, trials, first_number=0)
            s.flush()
            return True
