"""Lazy sweeps in the store: creating a sweep's next trial under the sweep's lock, and the
reads that search and pruning decide from.

A random or bayes sweep gets its next trial only while it has room: fewer than
max_trials trials in all, none queued, and fewer than max_concurrent queued or running.
The count and the insert happen in one transaction that holds the sweep's row lock
(SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite), so any
number of schedulers, before or after a restart, never create more than those limits
allow, and a trial once created is in the store whatever happens to its creator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from services.domain.kinds import LAZY_METHODS
from services.domain.records import PastTrial, SweepStatus, Trial, TrialStatus
from services.domain.search_state import AskedTrial, LazySweep, PruningContext
from services.domain.submissions import NewTrial
from services.store.db import Database
from services.store.tables import MetricPointRow, SweepRow, TrialRow, utcnow
from services.store.trial_rows import insert_trials, record_event, trial_from_row
from services.store.trial_states_repo import write_transaction

__all__ = ["AskedTrial", "LazySweep", "PruningContext", "SearchRepository"]

_QUEUED = TrialStatus.QUEUED.value
_RUNNING = TrialStatus.RUNNING.value


# Called under the sweep's lock: the sweep, and a reader of its trials' history.
Maker = Callable[[LazySweep, Callable[[], list[PastTrial]]], AskedTrial | None]


class SearchRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create_next(self, make: Maker, scan: int = 16) -> Trial | None:
        """Create one trial in the first lazy sweep (of up to `scan`) with room for one and
        for which `make` gives one; the created trial, or None."""
        with self._db.session() as s:
            candidates = s.scalars(_wanting_trials().limit(scan)).all()
        for sweep_id in candidates:
            trial = self._create_in(sweep_id, make)
            if trial is not None:
                return trial
        return None

    def _create_in(self, sweep_id: int, make: Maker) -> Trial | None:
        with write_transaction(self._db) as s:
            row = s.scalars(
                select(SweepRow)
                .where(SweepRow.id == sweep_id, SweepRow.status == SweepStatus.RUNNING.value)
                # Another scheduler asking in this sweep right now: leave it to them.
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if row is None or not _has_room(s, row):
                return None
            number = s.scalar(
                select(func.coalesce(func.max(TrialRow.number) + 1, 0)).where(
                    TrialRow.sweep_id == sweep_id
                )
            )
            sweep = LazySweep(
                id=row.id,
                project_id=row.project_id,
                method=row.method,
                spec=row.spec,
                metric_name=row.metric_name,
                metric_goal=row.metric_goal,
                next_number=int(number or 0),
            )
            asked = make(sweep, lambda: _history(s, sweep_id, row.metric_name))
            if asked is None:
                return None
            new = NewTrial(params=asked.params, spec=asked.spec, max_restarts=asked.max_restarts)
            (trial,) = insert_trials(s, row, [new], first_number=sweep.next_number)
            if asked.error is not None:
                trial.status = TrialStatus.FAILED.value
                trial.error = asked.error
                trial.finished_at = utcnow()
                record_event(s, trial.id, TrialStatus.FAILED, asked.error)
            s.flush()
            return trial_from_row(trial)

    # -- reads -------------------------------------------------------------------------
    def pruning_context(self, trial_id: int) -> PruningContext | None:
        with self._db.session() as s:
            found = s.execute(
                select(TrialRow.sweep_id, SweepRow.spec, SweepRow.metric_name, SweepRow.metric_goal)
                .join(SweepRow, SweepRow.id == TrialRow.sweep_id)
                .where(TrialRow.id == trial_id)
            ).one_or_none()
            if found is None:
                return None
            sweep_id, spec, metric, goal = found
            return PruningContext(sweep_id, trial_id, spec, metric, goal)

    def series(self, sweep_id: int, metric: str) -> list[PastTrial]:
        """Every trial of the sweep that evaluated `metric`, with its status and values
        (no params): one query, asked at every evaluation of a pruned sweep's trials."""
        with self._db.session() as s:
            rows = s.execute(
                select(
                    TrialRow.id,
                    TrialRow.number,
                    TrialRow.status,
                    MetricPointRow.step,
                    MetricPointRow.value,
                )
                .join(MetricPointRow, MetricPointRow.trial_id == TrialRow.id)
                .where(TrialRow.sweep_id == sweep_id, MetricPointRow.name == metric)
                .order_by(TrialRow.id, MetricPointRow.step)
            ).all()
            trials = {(r[0], r[1], r[2]) for r in rows}
            points = [(r[0], r[3], r[4]) for r in rows]
            return _past(sorted(trials), points, params={})


def _wanting_trials() -> Select[int]:
    """Running lazy sweeps that look like they have room (a hint: the lock decides)."""
    total = (
        select(func.count())
        .where(TrialRow.sweep_id == SweepRow.id)
        .correlate(SweepRow)
        .scalar_subquery()
    )
    live = (
        select(func.count())
        .where(TrialRow.sweep_id == SweepRow.id, TrialRow.status.in_([_QUEUED, _RUNNING]))
        .correlate(SweepRow)
        .scalar_subquery()
    )
    queued = exists().where(TrialRow.sweep_id == SweepRow.id, TrialRow.status == _QUEUED)
    return (
        select(SweepRow.id)
        .where(
            SweepRow.status == SweepStatus.RUNNING.value,
            SweepRow.method.in_(LAZY_METHODS),
            total < SweepRow.max_trials,
            live < SweepRow.max_concurrent,
            ~queued,
        )
        .order_by(SweepRow.id)
    )


def _has_room(s: Session, sweep: SweepRow) -> bool:
    """Counted under the sweep's lock: below max_trials, nothing queued (a queued trial
    waits for capacity; asking for another would not use the news of the running ones),
    and fewer than max_concurrent running."""
    rows = s.execute(
        select(TrialRow.status, func.count())
        .where(TrialRow.sweep_id == sweep.id)
        .group_by(TrialRow.status)
    ).all()
    counts: dict[str, int] = {status: n for status, n in rows}
    total = sum(counts.values())
    if sweep.max_trials is None or total >= sweep.max_trials or counts.get(_QUEUED, 0):
        return False
    return counts.get(_RUNNING, 0) < sweep.max_concurrent


def _history(s: Session, sweep_id: int, metric: str) -> list[PastTrial]:
    trials = s.execute(
        select(TrialRow.id, TrialRow.number, TrialRow.status, TrialRow.params)
        .where(TrialRow.sweep_id == sweep_id)
        .order_by(TrialRow.number)
    ).all()
    points = s.execute(
        select(MetricPointRow.trial_id, MetricPointRow.step, MetricPointRow.value)
        .where(
            MetricPointRow.trial_id.in_(select(TrialRow.id).where(TrialRow.sweep_id == sweep_id)),
            MetricPointRow.name == metric,
        )
        .order_by(MetricPointRow.trial_id, MetricPointRow.step)
    ).all()
    params = {r[0]: r[3] for r in trials}
    return _past([(r[0], r[1], r[2]) for r in trials], points, params)


def _past(
    trials: Sequence[tuple[int, int, str]],
    points: Iterable[tuple[int, int, float | None]],
    params: dict[int, dict[str, Any]],
) -> list[PastTrial]:
    """Trials (id, number, status) with their points (trial id, step, value) in step order."""
    steps: dict[int, list[int]] = {tid: [] for tid, _, _ in trials}
    values: dict[int, list[float]] = {tid: [] for tid, _, _ in trials}
    for tid, step, value in points:
        if tid in steps:
            steps[tid].append(step)
            # SQLite stores NaN as NULL; the store reads it back as NaN.
            values[tid].append(math.nan if value is None else value)
    return [
        PastTrial(
            number=number,
            status=TrialStatus(status),
            params=params.get(tid, {}),
            values=tuple(values[tid]),
            steps=tuple(steps[tid]),
            trial_id=tid,
        )
        for tid, number, status in trials
    ]
