"""Sweeps that stop themselves because their trials keep failing: how each running
sweep's trials have ended, and the stop itself (services.sweeps.failure_stop decides)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.domain.failure_tally import FailureTally
from services.domain.records import SweepStatus, TrialStatus
from services.store.db import Database
from services.store.tables import SweepRow, TrialRow

__all__ = ["STOPPED_WITH_SWEEP", "SweepFailureRepository"]

_FAILED = TrialStatus.FAILED.value
# Succeeded and pruned trials are results; cancelled ones ended by someone's choice.
_RESULTS = (TrialStatus.SUCCEEDED.value, TrialStatus.PRUNED.value)
STOPPED_WITH_SWEEP = "cancelled before it started: the sweep stopped, its trials kept failing"


class SweepFailureRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def tallies(self, trial_ids: Collection[int]) -> list[FailureTally]:
        """How the trials of each running sweep among these trials' sweeps ended so far."""
        if not trial_ids:
            return []
        with self._db.session() as s:
            sweeps = s.execute(
                select(SweepRow.id, SweepRow.spec)
                .where(
                    SweepRow.id.in_(select(TrialRow.sweep_id).where(TrialRow.id.in_(trial_ids))),
                    SweepRow.status == SweepStatus.RUNNING.value,
                )
                .order_by(SweepRow.id)
            ).all()
            return [_tally(s, sweep_id, spec) for sweep_id, spec in sweeps]


def _tally(s: Session, sweep_id: int, spec: dict[str, object]) -> FailureTally:
    of_sweep = TrialRow.sweep_id == sweep_id
    counts = dict(
        s.execute(
            select(TrialRow.status, func.count())
            .where(of_sweep, TrialRow.status.in_([_FAILED, *_RESULTS]))
            .group_by(TrialRow.status)
        ).all()
    )
    failed = int(counts.get(_FAILED, 0))
    # The failures in a row: those that ended after the latest result (all, if none).
    last_result = s.scalar(
        select(func.max(TrialRow.finished_at)).where(of_sweep, TrialRow.status.in_(_RESULTS))
    )
    in_a_row = failed
    if last_result is not None:
        in_a_row = int(
            s.scalar(
                select(func.count()).where(
                    of_sweep, TrialRow.status == _FAILED, TrialRow.finished_at > last_result
                )
            )
            or 0
        )
    last_error = s.scalar(
        select(TrialRow.error)
        .where(of_sweep, TrialRow.status == _FAILED)
        .order_by(TrialRow.finished_at.desc(), TrialRow.id.desc())
        .limit(1)
    )
    return FailureTally(
        sweep_id=sweep_id,
        spec=dict(spec),
        ended=sum(int(n) for n in counts.values()),
        failed=failed,
        failed_in_a_row=in_a_row,
        last_error=last_error,
    )
