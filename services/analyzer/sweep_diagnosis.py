"""Sweep-level analysis: what a whole sweep says about the learning rate.

Pure: it takes one SweepTrial per trial (config, summary figures, findings) and returns a
SweepDiagnosis: the best trial, the lr sensitivity per (optimizer, batch size) with its
stable lr range, the best lr per batch size against the linear and sqrt scaling rules,
counts of findings by kind, and one summary of what to do next.

    result = analyze_sweep(trials, metric="val_loss", goal="minimize")

Trials are ranked by the sweep metric's final value (its value at the trial's last
step), as the sweep spec defines; a trial whose final value is not finite, or that
diverged on the way (see sweep_inputs), is not ranked: its lr is no place to go.
A sweep with a trial still queued or running gets a provisional analysis.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.analyzer.findings import KINDS, json_value
from services.analyzer.sweep_advice import advise
from services.analyzer.sweep_inputs import (
    FindingBrief,
    Goal,
    MetricFigures,
    SweepTrial,
    TrialConfig,
    config_of,
)
from services.analyzer.sweep_lr import LrGroup, ScalingFit, Score, lr_groups, scaling_fits

__all__ = [
    "BestTrial",
    "FindingBrief",
    "Goal",
    "MetricFigures",
    "SweepDiagnosis",
    "SweepTrial",
    "analyze_sweep",
]


@dataclass(frozen=True)
class BestTrial:
    trial_id: int
    number: int
    status: str
    params: Mapping[str, Any]
    config: TrialConfig
    final: float  # the sweep metric at its last step
    best: float | None  # its best finite value
    provisional: bool  # still running: another trial may yet overtake it

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "number": self.number,
            "status": self.status,
            "params": dict(self.params),
            "optimizer": self.config.optimizer,
            "lr": self.config.lr,
            "spec_lr": self.config.spec_lr,
            "batch_size": self.config.batch_size,
            "final": json_value(self.final),
            "best": json_value(self.best),
            "provisional": self.provisional,
        }


@dataclass(frozen=True)
class SweepDiagnosis:
    metric: str
    goal: Goal
    provisional: bool
    trial_counts: Mapping[str, int]  # by status, plus "total" and "with_data"
    best: BestTrial | None
    groups: tuple[LrGroup, ...]
    scaling: tuple[ScalingFit, ...]
    finding_counts: Mapping[str, int]  # trials with each kind, every kind listed
    advice: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        if not self.advice:
            return ""
        text = "; ".join(self.advice)
        return text[0].upper() + text[1:] + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": {"name": self.metric, "goal": self.goal},
            "provisional": self.provisional,
            "trials": dict(self.trial_counts),
            "best": None if self.best is None else self.best.to_dict(),
            "sensitivity": [g.to_dict() for g in self.groups],
            "batch_scaling": [f.to_dict() for f in self.scaling],
            "finding_counts": dict(self.finding_counts),
            "summary": self.summary,
            "advice": list(self.advice),
        }


def _scorer(metric: str, goal: Goal) -> Score:
    sign = 1.0 if goal == "minimize" else -1.0

    def score(t: SweepTrial) -> float | None:
        figures = t.metrics.get(metric)
        if figures is None or not math.isfinite(figures.final) or t.outcome() == "diverged":
            return None
        return sign * figures.final

    return score


def _best(trials: Sequence[SweepTrial], metric: str, goal: Goal) -> SweepTrial | None:
    score = _scorer(metric, goal)
    ranked = [(s, t.number, t) for t in trials if (s := score(t)) is not None]
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def _best_trial(t: SweepTrial, metric: str, goal: Goal) -> BestTrial:
    figures = t.metrics[metric]
    return BestTrial(
        trial_id=t.trial_id,
        number=t.number,
        status=t.status,
        params=t.params,
        config=config_of(t.spec),
        final=figures.final,
        best=figures.best(goal),
        provisional=t.live,
    )


def _trial_counts(trials: Sequence[SweepTrial]) -> dict[str, int]:
    counts: dict[str, int] = {"total": len(trials), "with_data": sum(t.has_data for t in trials)}
    counts.update(sorted(Counter(t.status for t in trials).items()))
    return counts


def _finding_counts(trials: Sequence[SweepTrial]) -> dict[str, int]:
    counts = Counter(kind for t in trials for kind in t.kinds)
    return {kind: counts.get(kind, 0) for kind in KINDS}


def analyze_sweep(
    trials: Sequence[SweepTrial], metric: str = "val_loss", goal: Goal = "minimize"
) -> SweepDiagnosis:
    """The sweep's diagnosis from its trials (any order; numbers break ties)."""
    if goal not in ("minimize", "maximize"):
        raise ValueError(f"goal must be 'minimize' or 'maximize' (got {goal!r})")
    ordered = sorted(trials, key=lambda t: t.number)
    score = _scorer(metric, goal)
    groups = lr_groups(ordered, metric, goal)
    fits = scaling_fits(groups, ordered, score)
    best = _best(ordered, metric, goal)
    return SweepDiagnosis(
        metric=metric,
        goal=goal,
        provisional=any(t.live for t in ordered),
        trial_counts=_trial_counts(ordered),
        best=None if best is None else _best_trial(best, metric, goal),
        groups=groups,
        scaling=fits,
        finding_counts=_finding_counts(ordered),
        advice=advise(ordered, groups, fits, best, metric),
    )
