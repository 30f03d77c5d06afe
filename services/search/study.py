"""An Optuna study rebuilt in memory from a sweep's stored trials.

The store, not Optuna, is the source of truth: each ask or pruning decision builds a fresh
in-memory study from what the store says, asks it once and drops it. A past trial enters
the study as Optuna would have seen it:

- succeeded: COMPLETE, its value the metric's last evaluated value (as `Metric` ranks
  trials); one that ended on a non-finite value enters as PRUNED, which Optuna ranks below
  every complete trial;
- pruned (by a pruner or on divergence): PRUNED with its evaluations as intermediate values;
- queued or running: RUNNING, so TPE's constant liar keeps new asks away from its point;
- failed or cancelled: left out (they say nothing about the objective).

Intermediate values are keyed by evaluation number (1, 2, ...): a pruner's resource.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState, create_trial

from services.domain.records import PastTrial, TrialStatus

__all__ = ["Goal", "add_trial", "intermediate", "new_study", "optuna_state"]

Goal = Literal["minimize", "maximize"]
_LIVE = (TrialStatus.QUEUED, TrialStatus.RUNNING)


def new_study(
    goal: Goal, sampler: BaseSampler | None = None, pruner: BasePruner | None = None
) -> optuna.Study:
    # Every ask builds a study: Optuna's "A new study created in memory" line each time
    # says nothing to anyone.
    logging.getLogger("optuna").setLevel(logging.WARNING)
    return optuna.create_study(direction=goal, sampler=sampler, pruner=pruner)


def intermediate(values: Sequence[float]) -> dict[int, float]:
    return {k: float(v) for k, v in enumerate(values, start=1)}


def optuna_state(past: PastTrial) -> TrialState | None:
    """How Optuna sees the trial (see the module docstring); None: left out."""
    if past.status in _LIVE:
        return TrialState.RUNNING
    if past.status is TrialStatus.PRUNED:
        return TrialState.PRUNED
    if past.status is TrialStatus.SUCCEEDED and past.values:
        return TrialState.COMPLETE if math.isfinite(past.values[-1]) else TrialState.PRUNED
    return None


def add_trial(
    study: optuna.Study,
    past: PastTrial,
    *,
    params: Mapping[str, Any] | None = None,
    distributions: Mapping[str, BaseDistribution] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> FrozenTrial | None:
    """Add `past` to `study` with these internal param values; the trial as stored in the
    study (its id is what a pruner writes to), or None when the trial is left out."""
    state = optuna_state(past)
    if state is None:
        return None
    value = float(past.values[-1]) if state is TrialState.COMPLETE else None
    frozen = create_trial(
        state=state,
        value=value,
        params=dict(params or {}),
        distributions=dict(distributions or {}),
        intermediate_values=intermediate(past.values),
        system_attrs=dict(system_attrs or {}),
    )
    study.add_trial(frozen)
    return study.get_trials(deepcopy=False)[-1]
