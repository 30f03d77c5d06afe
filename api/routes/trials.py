"""One trial: its state, its history, cancelling it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import WAKES_LOOPS, CurrentProject, SettingsDep, StoreDep
from api.schemas import AnalysisOut, TrialEventOut, TrialOut
from services.analysis.trial_analysis import current_analysis

router = APIRouter(tags=["trials"])
TrialId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/trials/{trial_id}", response_model=TrialOut)
def get_trial(trial_id: TrialId, project: CurrentProject, store: StoreDep) -> TrialOut:
    return TrialOut.of(store.trials.get(project.id, trial_id))


@router.get("/trials/{trial_id}/events", response_model=list[TrialEventOut])
def trial_events(
    trial_id: TrialId, project: CurrentProject, store: StoreDep
) -> list[TrialEventOut]:
    """Every status transition of the trial, oldest first."""
    return [TrialEventOut.of(e) for e in store.trials.events(project.id, trial_id)]


@router.post("/trials/{trial_id}/cancel", response_model=TrialOut, dependencies=[WAKES_LOOPS])
def cancel_trial(trial_id: TrialId, project: CurrentProject, store: StoreDep) -> TrialOut:
    return TrialOut.of(store.trials.cancel(project.id, trial_id))


@router.get("/trials/{trial_id}/analysis", response_model=AnalysisOut)
def trial_analysis(
    trial_id: TrialId, project: CurrentProject, store: StoreDep, settings: SettingsDep
) -> AnalysisOut:
    """What went wrong with the learning rate, with the evidence and what to change.
    A trial that is still running gets a provisional diagnosis."""
    trial, body = current_analysis(store, project.id, trial_id, settings.max_series_points)
    return AnalysisOut(
        trial_id=trial_id,
        status=trial.status.value,
        provisional=body["provisional"],
        kinds=body["kinds"],
        findings=body["findings"],
        analyzer_version=body.get("analyzer_version"),
    )
