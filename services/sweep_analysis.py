"""Analysing a stored sweep: each trial's diagnosis and summary figures, then the sweep.

Diagnoses come from the cache the live analyzer fills (store.analyses) where it is
current; a finished trial without one is analysed now and its diagnosis saved, so the
next request finds it. A trial still running is analysed now and not saved: its
provisional diagnosis belongs to the live analyzer, which decides from the cached step
when to look again. Summary figures come from one aggregate query per metric name over
all of the sweep's trials, never from reading every series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.analysis import analyze_trial
from services.analyzer.sweep import (
    FindingBrief,
    Goal,
    MetricFigures,
    SweepDiagnosis,
    SweepTrial,
    analyze_sweep,
)
from services.domain import Sweep, Trial
from services.store import Store
from services.store.analyses import CachedAnalysis
from services.store.summaries import SeriesSummary

__all__ = ["SUMMARY_METRICS", "SweepAnalysis", "analyze_stored_sweep"]

# Summarised for every trial besides the sweep's own metric.
SUMMARY_METRICS = ("train_loss", "val_loss")
_PAGE = 500


@dataclass(frozen=True)
class SweepAnalysis:
    sweep: Sweep
    diagnosis: SweepDiagnosis
    cached: int  # trial diagnoses read from the cache
    computed: int  # trial diagnoses computed for this request

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep.id,
            "status": self.sweep.status.value,
            **self.diagnosis.to_dict(),
            "diagnoses": {"cached": self.cached, "computed": self.computed},
        }


def _trials(store: Store, project_id: int, sweep_id: int) -> list[Trial]:
    out: list[Trial] = []
    while True:
        page = store.sweeps.list_trials(project_id, sweep_id, limit=_PAGE, offset=len(out))
        out += page.items
        if not page.items or len(out) >= page.total:
            return out


def _briefs(analysis: Mapping[str, Any]) -> tuple[FindingBrief, ...]:
    out = []
    for f in analysis.get("findings") or ():
        if isinstance(f, Mapping) and isinstance(f.get("kind"), str):
            step = f.get("step")
            out.append(
                FindingBrief(
                    kind=f["kind"],
                    severity=str(f.get("severity", "info")),
                    step=step if isinstance(step, int) else None,
                )
            )
    return tuple(out)


def _figures(s: SeriesSummary) -> MetricFigures:
    return MetricFigures(last_step=s.last_step, final=s.last_value, low=s.low, high=s.high)


@dataclass
class _Tally:
    cached: int = 0
    computed: int = 0


def _diagnosis(
    store: Store,
    project_id: int,
    trial: Trial,
    cache: CachedAnalysis | None,
    has_points: bool,
    limit: int,
    tally: _Tally,
) -> dict[str, Any] | None:
    """The trial's diagnosis as stored JSON; None for a trial with nothing to analyse."""
    if cache is not None and cache.is_current and cache.analysis is not None:
        tally.cached += 1
        return cache.analysis
    if not has_points and trial.last_step is None:
        return None  # queued, or started without logging anything yet
    result = analyze_trial(store, project_id, trial.id, limit)
    tally.computed += 1
    body = result.diagnosis.to_dict()
    if result.trial.status.is_terminal:
        # The step the trial's row named before reading: a trial that moved on since
        # reads as stale next time, never the other way round.
        seen = cache.last_step if cache is not None else result.trial.last_step
        store.analyses.save(trial.id, seen, body)
    return body


def analyze_stored_sweep(store: Store, project_id: int, sweep_id: int, limit: int) -> SweepAnalysis:
    """The sweep's analysis; NotFound when the sweep is not the project's."""
    sweep = store.sweeps.get(project_id, sweep_id)
    trials = _trials(store, project_id, sweep_id)
    caches = {c.trial_id: c for c in store.analyses.for_sweep(project_id, sweep_id)}
    names = [sweep.metric_name, *SUMMARY_METRICS]
    summaries = store.summaries.for_sweep(project_id, sweep_id, names)
    logged = {trial_id for trial_id, _ in summaries}
    tally = _Tally()
    inputs = []
    for t in trials:
        analysis = _diagnosis(store, project_id, t, caches.get(t.id), t.id in logged, limit, tally)
        metrics = {n: _figures(summaries[(t.id, n)]) for n in names if (t.id, n) in summaries}
        steps = [m.last_step for m in metrics.values()]
        inputs.append(
            SweepTrial(
                trial_id=t.id,
                number=t.number,
                status=t.status.value,
                params=t.params,
                spec=t.spec,
                metrics=metrics,
                findings=None if analysis is None else _briefs(analysis),
                last_step=t.last_step if t.last_step is not None else max(steps, default=None),
            )
        )
    goal: Goal = "maximize" if sweep.metric_goal == "maximize" else "minimize"
    diagnosis = analyze_sweep(inputs, metric=sweep.metric_name, goal=goal)
    return SweepAnalysis(sweep, diagnosis, cached=tally.cached, computed=tally.computed)
