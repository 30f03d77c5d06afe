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
    momentum: Annotated[
        float | None,
        Query(description="sgd, rmsprop: the momentum to match (default: the optimizer's, 0)."),
    ] = None,
    nesterov: Annotated[
        bool | None, Query(description="sgd: Nesterov momentum or not (default false).")
    ] = None,
    betas: Annotated[
        str | None,
        Query(max_length=50, description="adam, adamw: beta1,beta2 (default 0.9,0.999)."),
    ] = None,
    max_steps: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="The budget to match, in steps (within 2x)."),
    ] = None,
    epochs: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="The budget to match, in epochs (within 2x)."),
    ] = None,
) -> RecommendationOut:
    """A suggested lr and range for (task, model, optimizer and its momentum, nesterov or
    betas, batch_size, schedule, budget), learned from the nearest comparable finished
    trials of this project, ranked by their sweep's metric; diverged and too-slow trials
    bound the range. The match is widened (other batch sizes moved by the rule, nearby
    momenta or betas, any budget, any schedule) only while too few trials match, and
    `matched_on` and `widened` say how. With fewer than 3 comparable trials there is no
    number, and the reasoning says to run POST /lr-find instead."""
    query = build_query(
        task,
        optimizer,
        model,
        batch_size,
        schedule,
        rule,
        momentum=momentum,
        nesterov=nesterov,
        betas=betas,
        max_steps=max_steps,
        epochs=epochs,
    )
    result = recommend(store, project.id, query)
    return RecommendationOut(query=dataclasses.asdict(query), **result.to_dict())
