"""Analysing a stored sweep: each trial's diagnosis and summary figures, then the sweep.

Diagnoses come from the cache the live analyzer fills (store.analyses) where it is
current and made by the running analyzer version. A finished trial without one is
analysed now as GET /trials/{id}/analysis would (full series, findings and cached
diagnosis recorded), so the next request finds it. A trial still running is analysed
now, as the live analyzer reads it, and not recorded: its provisional findings are the
live analyzer's to keep. The trials analysed now run in a
few threads: while one waits for PostgreSQL to send its series, another is diagnosed.
Summary figures come from one query per metric name over all of the sweep's trials,
never from reading every series: the sweep's metric and val_loss with their extremes (the
best value; a worst val_loss far above its best and start marks a blow-up), train_loss by
its first and last points (the start level; a non-finite last one marks a divergence).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from services.analysis.trial_analysis import diagnose_trial, record, usable
from services.analyzer.sweep_diagnosis import (
    FindingBrief,
    Goal,
    MetricFigures,
    SweepDiagnosis,
    SweepTrial,
    analyze_sweep,
)
from services.domain.records import SeriesSummary, Sweep, Trial
from services.settings import Settings
from services.store import Store

__all__ = ["SUMMARY_METRICS", "SweepAnalysis", "analyze_stored_sweep"]

# Summarised for every trial besides the sweep's own metric: with their extremes, or by
# their first and last points only.
EXTREME_METRICS = ("val_loss",)
SUMMARY_METRICS = ("train_loss", "val_loss")
# Threads for the trials analysed on demand: the database works on one trial's series
# while Python diagnoses another's; more than this only contend for 2-4 cores.
ANALYSIS_THREADS = 4
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
        page = store.trials.list(project_id, sweep_id, limit=_PAGE, offset=len(out))
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
    return MetricFigures(
        last_step=s.last_step, final=s.last_value, low=s.low, high=s.high, first=s.first_value
    )


def _analyse_now(store: Store, settings: Settings, trial: Trial) -> dict[str, Any]:
    """A trial's diagnosis computed now; a finished trial's is recorded for next time."""
    if trial.status.is_terminal:
        diagnosis = diagnose_trial(store, trial, settings.max_series_points)
        record(store, trial, diagnosis)
    else:
        diagnosis = diagnose_trial(store, trial, settings.analyze_max_points)
    return diagnosis.to_dict()


def analyze_stored_sweep(
    store: Store, settings: Settings, project_id: int, sweep_id: int
) -> SweepAnalysis:
    """The sweep's analysis; NotFound when the sweep is not the project's."""
    sweep = store.sweeps.get(project_id, sweep_id)
    trials = _trials(store, project_id, sweep_id)
    caches = {c.trial_id: c for c in store.analyses.for_sweep(project_id, sweep_id)}
    names = [sweep.metric_name, *(n for n in SUMMARY_METRICS if n != sweep.metric_name)]
    extremes = [n for n in names if n == sweep.metric_name or n in EXTREME_METRICS]
    ends = [n for n in names if n not in extremes]
    summaries = store.summaries.for_sweep(project_id, sweep_id, extremes)
    summaries.update(store.summaries.for_sweep(project_id, sweep_id, ends, extremes=False))
    logged = {trial_id for trial_id, _ in summaries}
    analyses: dict[int, dict[str, Any]] = {}
    todo = []
    for t in trials:
        cache = usable(caches.get(t.id))
        if cache is not None:
            analyses[t.id] = cache
        elif t.id in logged or t.last_step is not None:
            todo.append(t)  # else queued, or started without logging anything yet
    cached = len(analyses)
    if todo:
        with ThreadPoolExecutor(min(ANALYSIS_THREADS, len(todo))) as pool:
            done = pool.map(partial(_analyse_now, store, settings), todo)
            analyses.update(zip((t.id for t in todo), done, strict=True))
    inputs = []
    for t in trials:
        metrics = {n: _figures(summaries[(t.id, n)]) for n in names if (t.id, n) in summaries}
        steps = [m.last_step for m in metrics.values()]
        analysis = analyses.get(t.id)
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
                stop_reason=t.stop_reason,
            )
        )
    goal: Goal = "maximize" if sweep.metric_goal == "maximize" else "minimize"
    diagnosis = analyze_sweep(inputs, metric=sweep.metric_name, goal=goal)
    return SweepAnalysis(sweep, diagnosis, cached=cached, computed=len(todo))
