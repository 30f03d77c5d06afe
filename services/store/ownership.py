"""Project scoping in one place: a trial or sweep of another project reads as not found.

Every repository method that reads or writes project-owned data takes the project and
checks it here (or in its own query), so no caller has to remember a guard."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.domain.errors import NotFound
from services.store.tables import SweepRow, TrialRow


def require_trial(s: Session, project_id: int, trial_id: int) -> None:
    owner = s.scalar(select(TrialRow.project_id).where(TrialRow.id == trial_id))
    if owner is None or owner != project_id:
        raise NotFound(f"trial {trial_id} not found")


def require_sweep(s: Session, project_id: int, sweep_id: int) -> None:
    owner = s.scalar(select(SweepRow.project_id).where(SweepRow.id == sweep_id))
    if owner is None or owner != project_id:
        raise NotFound(f"sweep {sweep_id} not found")
