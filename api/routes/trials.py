"""One trial: its state, its history, cancelling it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import CurrentProject, StoreDep
from api.schemas import TrialEventOut, TrialOut

router = APIRouter(tags=["trials"])
TrialId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/trials/{trial_id}", response_model=TrialOut)
def get_trial(trial_id: TrialId, project: CurrentProject, store: StoreDep) -> TrialOut:
    return TrialOut.of(store.sweeps.get_trial(project.id, trial_id))


@router.get("/trials/{trial_id}/events", response_model=list[TrialEventOut])
def trial_events(
    trial_id: TrialId, project: CurrentProject, store: StoreDep
) -> list[TrialEventOut]:
    """Every status transition of the trial, oldest first."""
    return [TrialEventOut.of(e) for e in store.sweeps.trial_events(project.id, trial_id)]


@router.post("/trials/{trial_id}/cancel", response_model=TrialOut)
def cancel_trial(trial_id: TrialId, project: CurrentProject, store: StoreDep) -> TrialOut:
    return TrialOut.of(store.sweeps.cancel_trial(project.id, trial_id))
