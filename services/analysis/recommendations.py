"""GET /recommendations: a suggested lr and range learned from the project's finished
trials (see analyzer.lr_history for how), with the evidence behind it.

The query names registry entries; each is checked here, so a bad one is a 422 that names
the field and lists the valid values. Cached diagnoses are used where the live analyzer
or an analysis request left one; no trial is analysed for this request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import ValidationError

from services.analyzer.history_match import KNOBS, default_knobs
from services.analyzer.lr_history import (
    HistoryRun,
    LrQuery,
    LrRecommendation,
    Rule,
    recommend_from_history,
)
from services.domain.errors import InvalidInput
from services.domain.records import PastRun
from services.specs import OPTIMIZERS, SCHEDULES, TASKS, spec_errors
from services.store import Store

__all__ = ["ADAPTIVE", "build_query", "recommend"]

# Adaptive optimizers normalise the step by the gradient's scale: the square-root rule
# fits them better than the linear one, which is SGD's.
ADAPTIVE = frozenset({"adam", "adamw", "rmsprop", "adagrad"})
RuleChoice = Literal["auto", "linear", "sqrt", "none"]


def _known(field: str, value: str, valid: Mapping[str, Any]) -> str:
    if value not in valid:
        raise InvalidInput(
            f"unknown {field} {value!r}; valid: {', '.join(sorted(valid))}", field=field
        )
    return value


def _model(task: str, model: str | None) -> str | None:
    field = TASKS[task].model_fields.get("model")
    if field is None:
        if model is not None:
            raise InvalidInput(f"task {task} has no model choice; leave model out", field="model")
        return None
    choices = [str(c) for c in get_args(field.annotation)]
    if model is None:
        return str(field.default)
    if model not in choices:
        raise InvalidInput(
            f"unknown model {model!r} for task {task}; valid: {', '.join(choices)}", field="model"
        )
    return model


def _schedule(name: str) -> str:
    if name == "range_test":  # its lr ramps: there is no one lr to learn
        raise InvalidInput(
            "schedule range_test ramps the lr (the LR range test); ask for the schedule the "
            "trials will train with",
            field="schedule",
        )
    return _known("schedule", name, SCHEDULES)


def _batch_size(value: str) -> int | Literal["full"]:
    if value == "full":
        return "full"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise InvalidInput(
        f'batch_size must be an integer >= 1 or "full" (got {value!r})', field="batch_size"
    )


def _knobs(optimizer: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's knobs to match: its defaults (what a trial that sets none trains
    with), overridden by the query's, each checked as a trial spec checks it."""
    matched = KNOBS.get(optimizer, ())
    for name in given:
        if name not in matched:
            valid = f"its matched settings: {', '.join(matched)}" if matched else "it has none"
            raise InvalidInput(
                f"{name} is not a setting of optimizer {optimizer} that recommendations "
                f"match ({valid})",
                field=name,
            )
    knobs = {**default_knobs(optimizer), **given}
    try:
        OPTIMIZERS[optimizer].model_validate({"name": optimizer, **knobs})
    except ValidationError as exc:
        error = spec_errors(exc)[0]
        # A query parameter is one name: betas[0] is the betas parameter.
        field = re.split(r"[.\[]", error.field)[0] or next(iter(given), "optimizer")
        message = error.message
        if not message.startswith(field):
            message = f"{error.field or field}: {message}"
        raise InvalidInput(message, field=field) from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in knobs.items()}


def _betas(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        betas = [float(part) for part in value.split(",")]
    except ValueError:
        betas = []
    if len(betas) != 2:
        raise InvalidInput(
            f"betas must be two numbers separated by a comma, such as 0.9,0.999 (got {value!r})",
            field="betas",
        )
    return {"betas": betas}


def build_query(
    task: str,
    optimizer: str,
    model: str | None = None,
    batch_size: str = "32",
    schedule: str = "constant",
    rule: RuleChoice = "auto",
    *,
    momentum: float | None = None,
    nesterov: bool | None = None,
    betas: str | None = None,
    max_steps: int | None = None,
    epochs: int | None = None,
) -> LrQuery:
    """The checked query; `rule` auto is sqrt for adaptive optimizers, linear otherwise.
    The optimizer's knobs default to its own defaults (plain SGD: momentum 0); the budget
    is matched only when asked (max_steps or epochs, not both)."""
    task = _known("task", task, TASKS)
    optimizer = _known("optimizer", optimizer, OPTIMIZERS)
    chosen: Rule = ("sqrt" if optimizer in ADAPTIVE else "linear") if rule == "auto" else rule
    given = {
        k: v for k, v in (("momentum", momentum), ("nesterov", nesterov)) if v is not None
    } | _betas(betas)
    if max_steps is not None and epochs is not None:
        raise InvalidInput("give max_steps or epochs, not both (as in a budget)", field="epochs")
    return LrQuery(
        task=task,
        model=_model(task, model),
        optimizer=optimizer,
        batch_size=_batch_size(batch_size),
        schedule=_schedule(schedule),
        rule=chosen,
        optimizer_params=_knobs(optimizer, given),
        max_steps=max_steps,
        epochs=epochs,
    )


def _run(past: PastRun) -> HistoryRun:
    kinds = (past.analysis or {}).get("kinds")
    return HistoryRun(
        trial_id=past.trial_id,
        sweep_id=past.sweep_id,
        status=past.status,
        spec=past.spec,
        metric=past.metric,
        goal=past.goal,
        final=past.final,
        final_train_loss=past.final_train_loss,
        kinds=frozenset(str(k) for k in kinds) if isinstance(kinds, list) else None,
        stop_reason=past.stop_reason,
        last_step=past.last_step,
    )


def recommend(store: Store, project_id: int, query: LrQuery) -> LrRecommendation:
    """The recommendation from the project's ended trials of the query's task and
    optimizer (another project's trials are never read)."""
    history = store.history.ended_trials(project_id, query.task, query.optimizer)
    return recommend_from_history(query, [_run(p) for p in history])
