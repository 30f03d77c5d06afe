"""A project's finished trials of one task and optimizer, for learning from history.

One query: each ended trial (succeeded, pruned or failed) of a trained sweep (never a
range test, whose lr ramps, nor a run logged from elsewhere) with its spec, its cached
analysis, how it ended, its sweep's metric and that metric's last value, the last
train_loss, and its last step. Newest first, up to a limit.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from services.domain.kinds import SweepMethod, TrialKind
from services.domain.records import PastRun, TrialStatus
from services.store.db import Database
from services.store.tables import MetricPointRow, SweepRow, TrialRow

__all__ = ["HistoryRepository", "PastRun"]

# Sweeps whose trials say nothing about a good fixed lr: range tests ramp it.
_NOT_COMPARABLE = (SweepMethod.LR_FIND.value, SweepMethod.EXTERNAL.value)
_ENDED = (TrialStatus.SUCCEEDED.value, TrialStatus.PRUNED.value, TrialStatus.FAILED.value)


def _last(name: Any) -> Any:
    """The trial's last value of the metric `name` (a column or a literal)."""
    return (
        select(MetricPointRow.value)
        .where(MetricPointRow.trial_id == TrialRow.id, MetricPointRow.name == name)
        .order_by(MetricPointRow.step.desc())
        .limit(1)
        .correlate(TrialRow, SweepRow)
        .scalar_subquery()
    )


def _number(value: Any, logged: bool) -> float | None:
    if not logged:
        return None
    return math.nan if value is None else float(value)  # SQLite keeps NaN as NULL


def _logged(name: Any) -> Any:
    return (
        select(MetricPointRow.step)
        .where(MetricPointRow.trial_id == TrialRow.id, MetricPointRow.name == name)
        .limit(1)
        .correlate(TrialRow, SweepRow)
        .exists()
    )


class HistoryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def ended_trials(
        self, project_id: int, task: str, optimizer: str, limit: int = 5000
    ) -> list[PastRun]:
        query = (
            select(
                TrialRow.id,
                TrialRow.sweep_id,
                TrialRow.status,
                TrialRow.spec,
                TrialRow.stop_reason,
                TrialRow.analysis,
                SweepRow.metric_name,
                SweepRow.metric_goal,
                _last(SweepRow.metric_name),
                _logged(SweepRow.metric_name),
                _last("train_loss"),
                _logged("train_loss"),
                TrialRow.last_step,
            )
            .join(SweepRow, SweepRow.id == TrialRow.sweep_id)
            .where(
                TrialRow.project_id == project_id,
                TrialRow.kind == TrialKind.TRAINED,
                TrialRow.status.in_(_ENDED),
                SweepRow.method.not_in(_NOT_COMPARABLE),
                TrialRow.spec["task"]["name"].as_string() == task,
                TrialRow.spec["optimizer"]["name"].as_string() == optimizer,
            )
            .order_by(TrialRow.id.desc())
            .limit(limit)
        )
        with self._db.session() as s:
            rows = s.execute(query).all()
        return [
            PastRun(
                trial_id=r[0],
                sweep_id=r[1],
                status=r[2],
                spec=r[3],
                stop_reason=r[4],
                analysis=r[5],
                metric=r[6],
                goal=r[7],
                final=_number(r[8], r[9]),
                final_train_loss=_number(r[10], r[11]),
                last_step=r[12],
            )
            for r in rows
        ]
