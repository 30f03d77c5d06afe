"""Summary figures of a sweep's series: set-based aggregates, never the points themselves.

For each metric name, one query covers every trial of the sweep: the last point (the
largest step) and, when asked for, the point count and the smallest and largest finite
values. Non-finite values count as points and can be the last value (a run that diverged
ends on inf or NaN), but never as an extreme. SQLite stores NaN as NULL; it is read back
as NaN, as everywhere.

The last point alone costs one index probe per trial; the extremes cost a pass over every
point of the series, so they are asked for where they are used (the sweep's metric).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text

from services.store.db import Database

__all__ = ["SeriesSummary", "SummaryRepository"]

# `ABS(value) <= FLOAT_MAX` is the one finiteness test that reads the same on both
# backends: false for +-inf, for NaN (PostgreSQL orders NaN above every number) and for
# NULL (SQLite's NaN).
_SUMMARY_SQL = text(
    """
    WITH agg AS (
        SELECT m.trial_id,
               MAX(m.step) AS last_step,
               COUNT(*) AS points,
               MIN(m.value) FILTER (WHERE ABS(m.value) <= :float_max) AS low,
               MAX(m.value) FILTER (WHERE ABS(m.value) <= :float_max) AS high
        FROM metric_points m
        JOIN trials t ON t.id = m.trial_id
        WHERE t.project_id = :project_id AND t.sweep_id = :sweep_id AND m.name = :name
        GROUP BY m.trial_id
    )
    SELECT agg.trial_id, agg.last_step, last.value, agg.low, agg.high, agg.points
    FROM agg
    JOIN metric_points last
      ON last.trial_id = agg.trial_id AND last.name = :name AND last.step = agg.last_step
    """
)
_LAST_SQL = text(
    # MAX(step) under an equality prefix of the primary key is an index probe on both.
    """
    WITH agg AS (
        SELECT t.id AS trial_id,
               (SELECT MAX(m.step) FROM metric_points m
                WHERE m.trial_id = t.id AND m.name = :name) AS last_step
        FROM trials t
        WHERE t.project_id = :project_id AND t.sweep_id = :sweep_id
    )
    SELECT agg.trial_id, agg.last_step, last.value, NULL, NULL, NULL
    FROM agg
    JOIN metric_points last
      ON last.trial_id = agg.trial_id AND last.name = :name AND last.step = agg.last_step
    """
)


@dataclass(frozen=True)
class SeriesSummary:
    trial_id: int
    name: str
    points: int | None  # None unless the extremes were asked for
    last_step: int
    last_value: float  # NaN / inf kept
    low: float | None  # the smallest finite value; None when none is or when not asked for
    high: float | None


class SummaryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def for_sweep(
        self, project_id: int, sweep_id: int, names: Sequence[str], *, extremes: bool = True
    ) -> dict[tuple[int, str], SeriesSummary]:
        """(trial_id, name) -> summary for each of `names` that the trial logged; without
        `extremes`, only its last point."""
        out: dict[tuple[int, str], SeriesSummary] = {}
        with self._db.session() as s:
            for name in dict.fromkeys(names):  # once each, in the order given
                rows = s.execute(
                    _SUMMARY_SQL if extremes else _LAST_SQL,
                    {
                        "project_id": project_id,
                        "sweep_id": sweep_id,
                        "name": name,
                        "float_max": sys.float_info.max,
                    },
                )
                for trial_id, last_step, last, low, high, points in rows:
                    out[(trial_id, name)] = SeriesSummary(
                        trial_id=int(trial_id),
                        name=name,
                        points=None if points is None else int(points),
                        last_step=int(last_step),
                        last_value=math.nan if last is None else float(last),
                        low=None if low is None else float(low),
                        high=None if high is None else float(high),
                    )
        return out
