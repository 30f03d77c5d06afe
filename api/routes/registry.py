"""What can be asked for: tasks, optimizers and schedules with their parameters."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentProject
from api.schemas import RegistryEntryOut
from services.specs import OPTIMIZERS, SCHEDULES, TASKS, describe_registry

router = APIRouter(tags=["registry"])


@router.get("/tasks", response_model=list[RegistryEntryOut])
def list_tasks(_: CurrentProject) -> list[dict[str, object]]:
    return describe_registry(TASKS)


@router.get("/optimizers", response_model=list[RegistryEntryOut])
def list_optimizers(_: CurrentProject) -> list[dict[str, object]]:
    return describe_registry(OPTIMIZERS)


@router.get("/schedules", response_model=list[RegistryEntryOut])
def list_schedules(_: CurrentProject) -> list[dict[str, object]]:
    return describe_registry(SCHEDULES)
