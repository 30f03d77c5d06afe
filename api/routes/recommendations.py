"""Learning from history: a suggested lr and range from the project's finished trials."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentProject, StoreDep
from api.schemas import RecommendationOut
from services.analysis.recommendations import RuleChoice, build_query, recommend

router = APIRouter(tags=["recommendations"])
Name = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/recommendations", response_model=RecommendationOut)
def get_recommendation(
    project: CurrentProject,
    store: StoreDep,
    task: Name,
    optimizer: Name,
    model: Annotated[str | None, Query(max_length=200)] = None,
    batch_size: Annotated[str, Query(max_length=20)] = "32",
    schedule: Annotated[str, Query(max_length=200)] = "constant",
    rule: Annotated[
        RuleChoice,
        Query(
            description="How lrs move between batch sizes; auto: sqrt for "
            "adaptive optimizers, linear for the others."
        ),
    ] = "auto",
) -> RecommendationOut:
    """A suggested lr and range for (task, model, optimizer, batch_size, schedule), learned
    from the nearest comparable finished trials of this project, ranked by their sweep's
    metric; diverged and too-slow trials bound the range. With fewer than 3 comparable
    trials there is no number, and the reasoning says to run POST /lr-find instead."""
    query = build_query(task, optimizer, model, batch_size, schedule, rule)
    result = recommend(store, project.id, query)
    return RecommendationOut(query=dataclasses.asdict(query), **result.to_dict())
