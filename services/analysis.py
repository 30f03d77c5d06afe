"""Analysing a stored trial: read its series, build its context, run the analyzer."""

from __future__ import annotations

from dataclasses import dataclass

from services.analyzer import Diagnosis, RunContext, diagnose
from services.domain import Series, Trial, TrialStatus
from services.run_config import context_from_config
from services.store import Store

# The series the rules read; a run may log others, which the analysis ignores.
ANALYZED = ("train_loss", "val_loss", "val_accuracy", "lr", "grad_norm")


@dataclass(frozen=True)
class TrialAnalysis:
    trial: Trial
    diagnosis: Diagnosis


def _series(store: Store, trial_id: int, limit: int) -> dict[str, Series]:
    names = [n for n in store.metrics.names(trial_id) if n in ANALYZED]
    out = {s.name: s for s in store.metrics.read(trial_id, names, limit=limit)}
    for name, s in out.items():
        if s.next_start is not None:  # longer than one read: min/max buckets keep its shape
            (out[name],) = store.metrics.read(trial_id, [name], max_points=limit)
    return out


def analyze_trial(store: Store, project_id: int, trial_id: int, limit: int) -> TrialAnalysis:
    trial = store.sweeps.get_trial(project_id, trial_id)
    series = _series(store, trial_id, limit)
    running = not trial.status.is_terminal
    total = None
    if trial.status is TrialStatus.SUCCEEDED and "train_loss" in series:
        steps = series["train_loss"].steps
        total = steps[-1] + 1 if steps else None  # it ran its whole budget
    if trial.kind == "external":  # no TrialSpec: what its free-form config says
        context = context_from_config(trial.params, running=running, total_steps=total)
    else:
        context = RunContext.from_spec(trial.spec, running=running, total_steps=total)
    return TrialAnalysis(trial=trial, diagnosis=diagnose(series, context))
