"""Stored state that the code under test would take long, or never, to produce, written
straight into the rows: a heartbeat long past, an analysis cached by older rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from services.store import Store
from services.store.tables import TrialRow, utcnow


def cache_analysis(store: Store, trial_id: int, step: int | None, analysis: dict[str, Any]) -> None:
    """Make `analysis` the trial's cached one, as if made at `step` by the rules named in
    its analyzer_version (the findings stay as they are)."""
    with store.db.session() as s:
        s.execute(
            update(TrialRow)
            .where(TrialRow.id == trial_id)
            .values(
                analysis=analysis,
                analyzed_step=step,
                analyzer_version=analysis.get("analyzer_version"),
            )
        )


def backdate_heartbeat(store: Store, trial_id: int, seconds: float) -> None:
    """The trial's last heartbeat `seconds` ago, as a lost worker's would be."""
    with store.db.session() as s:
        s.execute(
            update(TrialRow)
            .where(TrialRow.id == trial_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )
