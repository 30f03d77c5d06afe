"""Sweeps and single jobs: submit, list, inspect, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import WAKES_LOOPS, CapacityDep, CurrentProject, PageDep, SettingsDep, StoreDep
from api.schemas import PageOut, SweepOut, SweepSubmittedOut, TrialOut
from api.sweep_body import OPENAPI as SWEEP_BODY
from api.sweep_body import SweepBody
from services.domain.records import SweepStatus, TrialStatus
from services.specs import TrialSpec
from services.sweeps.submit import submit_job, submit_sweep

router = APIRouter(tags=["sweeps"])
SweepId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/sweeps",
    response_model=SweepSubmittedOut,
    status_code=201,
    openapi_extra=SWEEP_BODY,
    dependencies=[WAKES_LOOPS],
)
def create_sweep(
    project: CurrentProject,
    body: SweepBody,
    store: StoreDep,
    settings: SettingsDep,
    capacity: CapacityDep,
) -> SweepSubmittedOut:
    """Submit a sweep: a base trial spec plus a search space. Grid trials are queued now.

    The body is a native sweep spec or a W&B sweep configuration, in JSON or YAML: the
    Content-Type says the syntax (application/json; application/yaml, application/x-yaml,
    text/yaml), the top-level keys the schema (`space`... native, `parameters`... W&B),
    and `?format=native|wandb` overrides them. Every trial the sweep can make is built
    before it is stored, and its metric checked against what its tasks log: a sweep that
    would fail is a 422 naming the key. A W&B file's errors name their place in the file
    (`parameters.learning_rate.min`); YAML syntax errors give the line and column.
    `warnings` lists what is allowed but likely unintended, or accepted but not done. On
    a fixed cluster, a sweep that can make a trial asking for more CPUs or GPUs than the
    largest node has is a 422 naming the field."""
    sweep = submit_sweep(store, settings, project.id, body.spec, capacity)
    return SweepSubmittedOut.submitted(sweep, body.warnings)


@router.post("/jobs", response_model=SweepOut, status_code=201, dependencies=[WAKES_LOOPS])
def create_job(
    spec: TrialSpec,
    project: CurrentProject,
    store: StoreDep,
    settings: SettingsDep,
    capacity: CapacityDep,
) -> SweepOut:
    """Submit one training job (stored as a sweep of one trial)."""
    return SweepOut.of(submit_job(store, settings, project.id, spec, capacity=capacity))


@router.get("/sweeps", response_model=PageOut[SweepOut])
def list_sweeps(
    project: CurrentProject,
    store: StoreDep,
    page: PageDep,
    status: Annotated[SweepStatus | None, Query()] = None,
) -> PageOut[SweepOut]:
    result = store.sweeps.list(project.id, limit=page.limit, offset=page.offset, status=status)
    return PageOut[SweepOut].build(result, [SweepOut.of(s) for s in result.items])


@router.get("/sweeps/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: SweepId, project: CurrentProject, store: StoreDep) -> SweepOut:
    return SweepOut.of(store.sweeps.get(project.id, sweep_id))


@router.post("/sweeps/{sweep_id}/cancel", response_model=SweepOut, dependencies=[WAKES_LOOPS])
def cancel_sweep(sweep_id: SweepId, project: CurrentProject, store: StoreDep) -> SweepOut:
    """Queued trials are cancelled at once; running ones are asked to stop."""
    return SweepOut.of(store.sweeps.cancel(project.id, sweep_id))


@router.get("/sweeps/{sweep_id}/trials", response_model=PageOut[TrialOut])
def list_trials(
    sweep_id: SweepId,
    project: CurrentProject,
    store: StoreDep,
    page: PageDep,
    status: Annotated[TrialStatus | None, Query()] = None,
) -> PageOut[TrialOut]:
    result = store.trials.list(
        project.id, sweep_id, limit=page.limit, offset=page.offset, status=status
    )
    return PageOut[TrialOut].build(result, [TrialOut.of(t) for t in result.items])
