"""External runs (the `wandb.init` path): start one, log to it through the trial metric
route, finish it and get its analysis."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import WAKES_LOOPS, CurrentProject, PageDep, SettingsDep, StoreDep
from api.schemas import AnalysisOut, PageOut, RunCreate, RunFinish, RunOut
from services.domain.records import TrialStatus
from services.tracking.external_runs import finish_run, start_run

router = APIRouter(tags=["runs"])
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/runs", response_model=RunOut, status_code=201, dependencies=[WAKES_LOOPS])
def create_run(body: RunCreate, project: CurrentProject, store: StoreDep) -> RunOut:
    """Start a run logged from elsewhere. It is running at once; send its metrics (the
    usual names or any others) to POST /trials/{id}/metrics with the returned id. Its
    analysis finds train_loss, val_loss, ... under the names it declares in
    `metric_names`, their own names, or the aliases in docs/metric-names.md."""
    run = start_run(
        store,
        project.id,
        name=body.name,
        config=body.config,
        tags=body.tags,
        metric_name=body.metric.name,
        metric_goal=body.metric.goal,
        metric_names=body.metric_names,
    )
    return RunOut.of(run)


@router.get("/runs", response_model=PageOut[RunOut])
def list_runs(
    project: CurrentProject,
    store: StoreDep,
    page: PageDep,
    status: Annotated[TrialStatus | None, Query()] = None,
) -> PageOut[RunOut]:
    """The project's runs, newest first."""
    result = store.runs.list(project.id, limit=page.limit, offset=page.offset, status=status)
    return PageOut[RunOut].build(result, [RunOut.of(r) for r in result.items])


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: RunId, project: CurrentProject, store: StoreDep) -> RunOut:
    return RunOut.of(store.runs.get(project.id, run_id))


@router.post("/runs/{run_id}/heartbeat", response_model=RunOut)
def heartbeat(run_id: RunId, project: CurrentProject, store: StoreDep) -> RunOut:
    """The script is alive. A running run that hears nothing (no heartbeat, no metric
    batch) for `run_silence_seconds` ends failed; the answer's status says whether this
    one still runs (or was cancelled: `cancel_requested`)."""
    store.runs.touch(project.id, run_id)  # nothing when it is not the project's running run
    return RunOut.of(store.runs.get(project.id, run_id))  # NotFound when not the project's


@router.post("/runs/{run_id}/finish", response_model=AnalysisOut, dependencies=[WAKES_LOOPS])
def finish(
    run_id: RunId,
    project: CurrentProject,
    store: StoreDep,
    settings: SettingsDep,
    body: RunFinish | None = None,
) -> AnalysisOut:
    """End the run (its last step comes from its series) and return its diagnosis.
    Finishing again returns the same; naming a different final status is a 409."""
    status = TrialStatus(body.status) if body and body.status else None
    trial, analysis = finish_run(store, settings, project.id, run_id, status)
    return AnalysisOut(trial_id=run_id, status=trial.status.value, **analysis)
