"""Analysing a stored trial: read its series, build its context, run the analyzer, and
keep the result (the cached diagnosis and the findings) for whoever reads it next."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from services.analyzer import ANALYZER_VERSION, Diagnosis, RunContext, diagnose
from services.analyzer.layers import LAYER_PREFIX
from services.domain.finding_records import FindingChanges
from services.domain.kinds import TrialKind
from services.domain.records import CachedAnalysis, Trial, TrialStatus
from services.store import Store
from services.tracking.metric_names import CANONICAL, MetricNames
from services.tracking.run_config import context_from_config

# The series the rules read; a run may log others, which the analysis ignores.
UNALIASED = ("sharpness",)
ANALYZED = (*CANONICAL, *UNALIASED)
# Per-layer gradient norms (grad_norm/<index>.<module>): at most this many, spread from the
# first layer to the last, which are the two the gradient rules compare.
MAX_LAYER_SERIES = 64
Columns = tuple[np.ndarray, np.ndarray]  # steps (int64), values (float64)


def analysed_series(store: Store, trial: Trial, limit: int) -> dict[str, Columns]:
    """Each analysed series in one read, as (steps, values) arrays: raw up to `limit`
    points, longer ones reduced to `limit` by min/max buckets (which keep the shape:
    spikes, the first non-finite). Arrays, not lists: the rules work on arrays, and a
    10,000-point list costs ~0.5 ms each way. Per-layer gradient norms come along when the
    run logged them."""
    names = (*ANALYZED, *_layers(store, trial))
    return store.metrics.read_shapes(trial.project_id, trial.id, names, limit)


def _layers(store: Store, trial: Trial) -> list[str]:
    return store.metrics.names_with_prefix(
        trial.project_id, trial.id, LAYER_PREFIX, MAX_LAYER_SERIES
    )


def metric_names(trial: Trial) -> MetricNames:
    """Where an external run's analysed series are found: its declared `metric_names`
    (kept in its spec), the canonical names, then the common aliases."""
    return MetricNames(trial.spec.get("metric_names") or {})


def trial_series(store: Store, trial: Trial, limit: int) -> dict[str, Columns]:
    """`analysed_series` under the canonical names: a trained trial logs them itself, an
    external run's are picked from what it logged (still one read). Series that have no
    aliases (per-layer norms as lrlab.torch names them, sharpness) are read as logged."""
    if trial.kind != TrialKind.EXTERNAL:
        return analysed_series(store, trial, limit)
    names = metric_names(trial)
    as_logged = (*UNALIASED, *_layers(store, trial))
    read = store.metrics.read_shapes(
        trial.project_id, trial.id, (*names.candidates, *as_logged), limit
    )
    return {**names.pick(read), **{n: read[n] for n in as_logged if n in read}}


def run_context(trial: Trial, series: Mapping[str, Columns]) -> RunContext:
    """What the rules know of how the trial was configured: its spec, or an external
    run's config; `series` are its analysed series (a finished run's length)."""
    running = not trial.status.is_terminal
    total = None
    if trial.status is TrialStatus.SUCCEEDED and "train_loss" in series:
        steps = series["train_loss"][0]
        total = int(steps[-1]) + 1 if steps.size else None  # it ran its whole budget
    if trial.kind == TrialKind.EXTERNAL:  # no TrialSpec: what its free-form config says
        ctx = context_from_config(trial.params, running=running, total_steps=total)
    else:
        ctx = RunContext.from_spec(trial.trial_spec, running=running, total_steps=total)
    return dataclasses.replace(ctx, stop_reason=trial.stop_reason)


def diagnose_trial(store: Store, trial: Trial, limit: int) -> Diagnosis:
    """The diagnosis of a trial already looked up (provisional while it is not terminal)."""
    series = trial_series(store, trial, limit)
    return diagnose(series, run_context(trial, series))


def record(store: Store, trial: Trial, diagnosis: Diagnosis) -> FindingChanges:
    """Keep a diagnosis, in one transaction: the trial's findings and its cached analysis,
    keyed by the step the trial's row named before the series were read (a trial that
    moved on since reads as stale next time, never the other way round)."""
    return store.findings.upsert(
        trial.project_id, trial.id, diagnosis, cache=(trial.last_step, diagnosis.to_dict())
    )


def usable(cached: CachedAnalysis | None) -> dict[str, Any] | None:
    """A cached diagnosis that can stand for the trial now: it saw the trial's last step
    and final status, and the rules that made it are the ones running (after an upgrade
    a finished trial is diagnosed again)."""
    if cached is None or not cached.is_current or cached.analysis is None:
        return None
    return cached.analysis if cached.analysis.get("analyzer_version") == ANALYZER_VERSION else None


def current_analysis(
    store: Store, project_id: int, trial_id: int, limit: int
) -> tuple[Trial, dict[str, Any]]:
    """The trial and its diagnosis as JSON: the cached one when current, else computed now
    (and kept when the trial has ended: its final diagnosis will not change)."""
    trial = store.trials.get(project_id, trial_id)
    cached = usable(store.analyses.get(project_id, trial_id))
    if cached is not None:
        return trial, cached
    diagnosis = diagnose_trial(store, trial, limit)
    if trial.status.is_terminal:
        record(store, trial, diagnosis)
    return trial, diagnosis.to_dict()
