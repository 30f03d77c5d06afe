"""A sweep's metric target (W&B's metric.target): the sweep ends once a trial ends with its
metric at the target.

"Ends with" means the trial succeeded, or was pruned, and the last evaluated value of the
sweep's metric (the value the sweep ranks it by) is at or below the target when
minimizing, at or above it when maximizing. The sweep then finishes with an status_reason
saying which trial reached what; its queued trials are cancelled and no new ones are made,
while trials already running go on to their end (as W&B's agents finish theirs). The
scheduler asks here about every trial it has just seen end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from services.domain.records import SweepStatus, Trial, TrialStatus
from services.domain.stored_specs import StoredSpecError
from services.specs import Metric
from services.store import Store

__all__ = ["end_sweeps_at_target", "reaches"]

log = logging.getLogger("lrlab.sweeps")

_ENDED = (TrialStatus.SUCCEEDED, TrialStatus.PRUNED)


def reaches(metric: Metric, value: float) -> bool:
    """Whether a trial that ended on `value` reaches the metric's target (never when it
    has none, nor on a non-finite value)."""
    if metric.target is None or not math.isfinite(value):
        return False
    return value <= metric.target if metric.goal == "minimize" else value >= metric.target


def _reason(trial: Trial, metric: Metric, value: float) -> str:
    sign = "<=" if metric.goal == "minimize" else ">="
    return (
        f"target reached: trial {trial.number} ended with {metric.name} {value:.6g} "
        f"{sign} the target {metric.target:g}"
    )


def _end_at_target(store: Store, trial: Trial) -> bool:
    sweep = store.sweeps.get(trial.project_id, trial.sweep_id)
    if sweep.status is not SweepStatus.RUNNING:
        return False
    try:
        metric = sweep.sweep_spec.metric
    except StoredSpecError as exc:  # one broken sweep must not stop the scheduler
        log.error("%s", exc)
        return False
    if metric.target is None:
        return False
    summaries = store.summaries.for_sweep(
        trial.project_id, trial.sweep_id, [metric.name], extremes=False
    )
    summary = summaries.get((trial.id, metric.name))
    if summary is None or not reaches(metric, summary.last_value):
        return False
    return store.trial_states.end_sweep(trial.sweep_id, _reason(trial, metric, summary.last_value))


def end_sweeps_at_target(store: Store, trial_ids: Iterable[int]) -> list[int]:
    """The sweeps that end because one of these trials, which just ended, reached its
    sweep's metric target."""
    ended: list[int] = []
    for trial_id in dict.fromkeys(trial_ids):
        trial = store.trial_states.get(trial_id)
        if trial is None or trial.status not in _ENDED or trial.sweep_id in ended:
            continue
        if _end_at_target(store, trial):
            ended.append(trial.sweep_id)
    return ended
