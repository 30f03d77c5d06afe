"""Lazy sweeps (random, bayes): the scheduler asks here for a sweep's next trial when it
has room and nothing queued to claim, so Bayesian samplers learn from every trial that
finished before.

The store creates the trial under the sweep's lock (`SearchRepository.create_next`),
and under that lock this module resolves the space, asks the sweep's search engine
(`search.engine`) and builds the trial spec (`specs.apply_params`). Params that make an
invalid trial, or a search that fails, give a trial recorded failed with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from services.domain.records import PastTrial, Trial
from services.domain.search_state import AskedTrial, LazySweep
from services.domain.stored_specs import StoredSpecError
from services.search.distributions import Param
from services.search.engine import search_for
from services.specs import SweepSpec, apply_params, describe_error
from services.store import Store
from services.sweeps.lr_auto import lr_auto_pending

__all__ = ["ask_next_trial", "resolve_space"]

log = logging.getLogger("lrlab.search")


def resolve_space(sweep: LazySweep, spec: SweepSpec) -> Mapping[str, Param] | None:
    """The space to ask in now; None while a parameter is not ready to be sampled (say,
    lr bounds still to come from a range test): the sweep is asked again next time."""
    return None if lr_auto_pending(spec) else spec.space


def ask_next_trial(store: Store) -> Trial | None:
    """Create the next trial of one lazy sweep with room; None when none has any."""
    return store.search.create_next(_make)


def _make(sweep: LazySweep, history: Callable[[], list[PastTrial]]) -> AskedTrial | None:
    try:
        spec = sweep.sweep_spec
    except StoredSpecError as exc:  # asking for one broken sweep must not stop the others
        log.error("%s", exc)
        return None
    space = resolve_space(sweep, spec)
    if space is None:
        return None
    base = spec.base.model_dump(mode="json")
    search = search_for(spec)
    past = history() if search.uses_history else []
    try:
        params = search.ask(space, past, sweep.next_number)
    except Exception as exc:  # a sampler's failure ends this trial, not the scheduler
        log.exception("sweep %s: the %s search failed", sweep.id, spec.method)
        error = f"the {spec.method} search could not ask for a trial: {type(exc).__name__}: {exc}"
        return AskedTrial(params={}, spec=base, max_restarts=spec.base.max_restarts, error=error)
    try:
        trial = apply_params(spec.base, params)
    except ValidationError as exc:
        error = f"params {params} give an invalid trial: {describe_error(exc)}"
        return AskedTrial(params, base, spec.base.max_restarts, error=error)
    return AskedTrial(params, trial.model_dump(mode="json"), trial.max_restarts)
