"""Early stopping inside a running trial: at each evaluation the worker asks here whether
the sweep's pruner stops it.

Why in the worker: the decision then falls at the evaluation it is about, and a pruned
trial stops before its next step. A pass elsewhere (the scheduler, the live analyzer)
would see the evaluation only once its points were stored and stop the trial a heartbeat
later, spending steps on a trial already judged: the very steps early stopping is for.

Each decision is one query (the sweep's values of its metric, `SearchRepository.series`)
plus the trial's own values seen so far, some of which its sink may not have stored yet.
A pruned trial is recorded through `request_stop`, so it ends `pruned` with the reason,
as any policy stop does; a failed decision (the store away) lets the trial go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import TypeAdapter, ValidationError

from services.domain.search_state import PruningContext
from services.specs.early_stop import EarlyStop
from services.store import Store

if TYPE_CHECKING:
    from services.search.pruners import TrialPruner

__all__ = ["EvalPruning", "pruning_for"]

log = logging.getLogger("lrlab.pruning")
_EARLY_STOP: TypeAdapter[EarlyStop] = TypeAdapter(EarlyStop)


class EvalPruning:
    """The pruning decisions of one attempt of one trial."""

    def __init__(
        self, store: Store, context: PruningContext, attempt: int, pruner: TrialPruner
    ) -> None:
        self._store = store
        self._context = context
        self._attempt = attempt
        self._pruner = pruner
        self._seen: dict[int, float] = {}  # step -> value of this attempt's evaluations

    def __call__(self, step: int, metrics: Mapping[str, float]) -> str | None:
        """The stop reason when the trial is pruned at this evaluation, else None."""
        ctx = self._context
        value = metrics.get(ctx.metric_name)
        if value is None:
            return None
        self._seen[step] = float(value)
        try:
            trials = self._store.search.series(ctx.sweep_id, ctx.metric_name)
        except Exception as exc:  # the next evaluation asks again
            log.warning("trial %s: no pruning decision at step %s: %s", ctx.trial_id, step, exc)
            return None
        own: dict[int, float] = {}
        for trial in trials:
            if trial.trial_id == ctx.trial_id:
                own.update(zip(trial.steps, trial.values, strict=True))
        own.update(self._seen)
        from services.search.pruners import Decision  # loaded with the pruner, see below

        decision = Decision(
            metric=ctx.metric_name,
            goal="maximize" if ctx.metric_goal == "maximize" else "minimize",
            step=step,
            values=tuple(v for s, v in sorted(own.items()) if s <= step),
            others=[t for t in trials if t.trial_id != ctx.trial_id],
        )
        reason = self._pruner.prune(decision)
        if reason is not None:
            self._store.trial_states.request_stop(ctx.trial_id, self._attempt, reason)
        return reason


def pruning_for(store: Store, trial_id: int, attempt: int) -> EvalPruning | None:
    """The attempt's pruning decisions, or None when its sweep has no early_stop."""
    context = store.search.pruning_context(trial_id)
    raw = None if context is None else context.spec.get("early_stop")
    if context is None or raw is None:
        return None
    # Only the early_stop part is read: a sweep spec stored by an older version need not
    # validate whole for its trials to train.
    try:
        early_stop = _EARLY_STOP.validate_python(raw)
    except ValidationError as exc:
        log.warning("trial %s trains without early stopping: %s", trial_id, exc)
        return None
    # Optuna and scipy load here, for sweeps that prune, not in every worker (~0.8 s).
    from services.search.pruners import pruner_for

    return EvalPruning(store, context, attempt, pruner_for(early_stop))
