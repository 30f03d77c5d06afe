"""Summary figures of a sweep's series: set-based aggregates, never the points themselves.

For each metric name, one query covers every trial of the sweep: the first and the last
point (the smallest and the largest step) and, when asked for, the point count and the
smallest and largest finite values. Non-finite values count as points and can be the
last value (a run that diverged ends on inf or NaN), but never as an extreme. SQLite
stores NaN as NULL; it is read back as NaN, as everywhere.

The first and last points alone cost two index probes per trial; the extremes cost a pass
over every point of the series, so they are asked for where they are used (the sweep's
metric, and val_loss, whose worst value tells a blow-up).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from sqlalchemy import text

from services.domain.records import SeriesSummary
from services.store.db import Database

__all__ = ["SeriesSummary", "SummaryRepository"]

# `ABS(value) <= FLOAT_MAX` is the one finiteness test that reads the same on both
# backends: false for +-inf, for NaN (PostgreSQL orders NaN above every number) and for
# NULL (SQLite's NaN).
_SUMMARY_SQL = text(
    """
    WITH agg AS (
        SELECT m.trial_id,
               MIN(m.step) AS first_step,
               MAX(m.step) AS last_step,
               COUNT(*) AS points,
               MIN(m.value) FILTER (WHERE ABS(m.value) <= :float_max) AS low,
               MAX(m.value) FILTER (WHERE ABS(m.value) <= :float_max) AS high
        FROM metric_points m
        JOIN trials t ON t.id = m.trial_id
        WHERE t.project_id = :project_id AND t.sweep_id = :sweep_id AND m.name = :name
        GROUP BY m.trial_id
    )
    SELECT agg.trial_id, agg.last_step, last.value, agg.low, agg.high, agg.points,
           first.value
    FROM agg
    JOIN metric_points last
      ON last.trial_id = agg.trial_id AND last.name = :name AND last.step = agg.last_step
    JOIN metric_points first
      ON first.trial_id = agg.trial_id AND first.name = :name AND first.step = agg.first_step
    """
)
_ENDS_SQL = text(
    # MIN/MAX(step) under an equality prefix of the primary key are index probes on both.
    """
    WITH agg AS (
        SELECT t.id AS trial_id,
               (SELECT MIN(m.step) FROM metric_points m
                WHERE m.trial_id = t.id AND m.name = :name) AS first_step,
               (SELECT MAX(m.step) FROM metric_points m
                WHERE m.trial_id = t.id AND m.name = :name) AS last_step
        FROM trials t
        WHERE t.project_id = :project_id AND t.sweep_id = :sweep_id
    )
    SELECT agg.trial_id, agg.last_step, last.value, NULL, NULL, NULL, first.value
    FROM agg
    JOIN metric_points last
      ON last.trial_id = agg.trial_id AND last.name = :name AND last.step = agg.last_step
    JOIN metric_points first
      ON first.trial_id = agg.trial_id AND first.name = :name AND first.step = agg.first_step
    """
)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)  # SQLite's NaN comes back as NULL


class SummaryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def for_sweep(
        self, project_id: int, sweep_id: int, names: Sequence[str], *, extremes: bool = True
    ) -> dict[tuple[int, str], SeriesSummary]:
        """(trial_id, name) -> summary for each of `names` that the trial logged; without
        `extremes`, only its first and last points."""
        out: dict[tuple[int, str], SeriesSummary] = {}
        with self._db.session() as s:
            for name in dict.fromkeys(names):  # once each, in the order given
                rows = s.execute(
                    _SUMMARY_SQL if extremes else _ENDS_SQL,
                    {
                        "project_id": project_id,
                        "sweep_id": sweep_id,
                        "name": name,
                        "float_max": sys.float_info.max,
                    },
                )
                for trial_id, last_step, last, low, high, points, first in rows:
                    out[(trial_id, name)] = SeriesSummary(
                        trial_id=int(trial_id),
                        name=name,
                        points=None if points is None else int(points),
                        last_step=int(last_step),
                        last_value=_number(last),
                        first_value=_number(first),
                        low=None if low is None else float(low),
                        high=None if high is None else float(high),
                    )
        return out
