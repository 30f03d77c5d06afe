"""What the live analyzer looks at next: running trials with steps it has not seen, and
ended trials whose final analysis is missing or was made by other rules.

A trial's final analysis is in place when its cached analysis saw its last step and its
active findings are not provisional (every analysis stores at least one finding, so a
trial with none was never analysed as ended).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from sqlalchemy import exists, func, select, text

from services.domain.kinds import TrialKind
from services.domain.records import TERMINAL_TRIAL_STATES, Trial, TrialStatus
from services.store.db import Database
from services.store.tables import FindingRow, TrialRow
from services.store.trial_rows import trial_from_row

_TERMINAL = sorted(s.value for s in TERMINAL_TRIAL_STATES)

# The names come as one array parameter, so the statement is the same for any number of
# them: planning and compiling a subquery per name cost ~15 ms for 57 names, this < 1 ms.
# ORDER BY ... LIMIT 1 rather than max(), which PostgreSQL may plan as a scan of the whole
# series when its statistics think the series short (a new trial's).
_PROBE = (
    "SELECT max((SELECT m.step FROM metric_points m WHERE m.trial_id = :trial_id "
    "AND m.name = {name} ORDER BY m.step DESC LIMIT 1)) FROM {names}"
)
_LOGGED_STEP_PG = text(
    _PROBE.format(name="n.name", names="unnest(CAST(:names AS text[])) AS n(name)")
)
_LOGGED_STEP_SQLITE = text(_PROBE.format(name="n.value", names="json_each(:names) AS n"))


class AnalysisQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    def running(self) -> list[Trial]:
        """Running trials that may have news: trained ones whose heartbeat named a step
        past the last one analysed, and every external run (their rows learn their last
        step only when they finish: see `logged_step`)."""
        news = TrialRow.last_step > func.coalesce(TrialRow.analyzed_step, -1)
        query = (
            select(TrialRow)
            .where(TrialRow.status == TrialStatus.RUNNING.value)
            .where(news | (TrialRow.kind == TrialKind.EXTERNAL))
            .order_by(TrialRow.id)
        )
        with self._db.session() as s:
            return [trial_from_row(r) for r in s.scalars(query)]

    def logged_step(self, trial_id: int, names: Sequence[str]) -> int | None:
        """The largest step logged for any of `names`: one probe of the key's end each,
        in one statement whatever the number of names (an external run has dozens)."""
        if not names:
            return None
        with self._db.session() as s:
            if self._db.is_postgres:
                step = s.scalar(_LOGGED_STEP_PG, {"trial_id": trial_id, "names": list(names)})
            else:
                step = s.scalar(
                    _LOGGED_STEP_SQLITE, {"trial_id": trial_id, "names": json.dumps(list(names))}
                )
        return None if step is None else int(step)

    def ended(self, limit: int, version: str, skip: Collection[int] = ()) -> list[Trial]:
        """Ended trials that logged steps and lack their final analysis by the analyzer
        `version` (an upgrade of the rules makes every older one stale), newest first."""
        final = exists().where(
            FindingRow.trial_id == TrialRow.id,
            FindingRow.active.is_(True),
            FindingRow.provisional.is_(False),
        )
        stale = (
            TrialRow.analysis.is_(None)
            | TrialRow.analyzed_step.is_distinct_from(TrialRow.last_step)
            | TrialRow.analyzer_version.is_distinct_from(version)
            | ~final
        )
        query = (
            select(TrialRow)
            .where(TrialRow.status.in_(_TERMINAL), TrialRow.last_step.is_not(None), stale)
            .order_by(TrialRow.id.desc())
            .limit(limit)
        )
        if skip:
            query = query.where(TrialRow.id.not_in(list(skip)))
        with self._db.session() as s:
            return [trial_from_row(r) for r in s.scalars(query)]
