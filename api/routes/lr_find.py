"""LR range tests: start one, read its curve and suggested lrs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import WAKES_LOOPS, CapacityDep, CurrentProject, StoreDep
from api.schemas import LrFindOut
from services.specs.range_test import RangeTestRequest
from services.sweeps.range_tests import read_range_test, submit_range_test

router = APIRouter(tags=["lr-find"])
SweepId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MaxPoints = Annotated[
    int, Query(ge=4, le=10_000, description="At most this many curve points come back.")
]


@router.post("/lr-find", response_model=LrFindOut, status_code=201, dependencies=[WAKES_LOOPS])
def start_lr_find(
    request: RangeTestRequest, project: CurrentProject, store: StoreDep, capacity: CapacityDep
) -> LrFindOut:
    """Start an LR range test on `base` (task, model, optimizer, batch size...): the lr
    ramps exponentially from min_lr to max_lr over `steps` steps and the test stops once
    the smoothed loss exceeds `loss_above_best` times its best. It is a sweep of method
    lr_find holding one trial, so the trial routes work on it too."""
    sweep = submit_range_test(store, project.id, request, capacity)
    return LrFindOut.model_validate(read_range_test(store, project.id, sweep.id).to_dict())


@router.get("/lr-find/{sweep_id}", response_model=LrFindOut)
def get_lr_find(
    sweep_id: SweepId, project: CurrentProject, store: StoreDep, max_points: MaxPoints = 500
) -> LrFindOut:
    """The test's status, its curve (lr, loss, smoothed loss) and the suggested lrs:
    steepest descent, minimum/10 and valley, each with its reasoning, the recommended one,
    and log-uniform bounds for a follow-up sweep."""
    return LrFindOut.model_validate(
        read_range_test(store, project.id, sweep_id, max_points).to_dict()
    )
