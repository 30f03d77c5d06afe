"""The lr side of a sweep: sensitivity per (optimizer, batch size), the stable lr range,
and how the best lr moves with batch size.

The stable range lies between the largest lr that was too slow (slow_convergence,
underfitting or plateau) and the smallest that diverged; a side the sweep never reached
stays open (None) and the note says so. The scaling fit is a least-squares line through
log(best lr) against log(batch size): slope ~1 is the linear scaling rule, ~0.5 the
square-root rule.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.analyzer.findings import json_value
from services.analyzer.sweep_inputs import Goal, Outcome, SweepTrial, TrialConfig, config_of

__all__ = [
    "BatchBest",
    "LrGroup",
    "LrPoint",
    "ScalingFit",
    "Score",
    "StableRange",
    "lr_groups",
    "lr_text",
    "scaling_fits",
]

RULES = {"linear": 1.0, "sqrt": 0.5}
# A slope further than this from both rules fits neither; below FLAT the lr hardly moves.
RULE_TOLERANCE = 0.25
FLAT = 0.2

Score = Callable[[SweepTrial], float | None]  # the metric, signed so that lower is better


def lr_text(lr: float) -> str:
    """3e-3, 2.5e-4, 1: lrs read best in powers of ten."""
    if 1 <= lr < 10:
        return f"{lr:.2g}"
    mantissa, exponent = f"{lr:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


@dataclass(frozen=True)
class LrPoint:
    trial_id: int
    number: int
    status: str
    lr: float
    final: float | None  # the sweep metric at the trial's last step
    best: float | None  # its best finite value
    outcome: Outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "number": self.number,
            "status": self.status,
            "lr": self.lr,
            "final": json_value(self.final),
            "best": json_value(self.best),
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class StableRange:
    low: float | None  # the largest too-slow lr (exclusive); None: no lr tried was too slow
    high: float | None  # the smallest diverging lr (exclusive); None: none diverged
    lrs: tuple[float, ...]  # the lrs tried inside (low, high) that stalled nor diverged
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "low_bounded": self.low is not None,
            "high_bounded": self.high is not None,
            "lrs": list(self.lrs),
            "note": self.note,
        }


@dataclass(frozen=True)
class LrGroup:
    optimizer: str | None
    batch_size: int | str | None
    points: tuple[LrPoint, ...]  # by lr, then trial number
    stable: StableRange

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(sorted({p.lr for p in self.points}))

    def label(self) -> str:
        bs = "" if self.batch_size is None else f", batch size {self.batch_size}"
        return f"{self.optimizer or 'unknown optimizer'}{bs}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "batch_size": self.batch_size,
            "lrs": list(self.lrs),
            "points": [p.to_dict() for p in self.points],
            "stable_range": self.stable.to_dict(),
        }


def _stable(points: Sequence[LrPoint]) -> StableRange:
    lrs = sorted({p.lr for p in points})
    slow = [p.lr for p in points if p.outcome == "too_slow"]
    diverged = [p.lr for p in points if p.outcome == "diverged"]
    low = max(slow) if slow else None
    high = min(diverged) if diverged else None
    if low is not None and high is not None and low >= high:
        note = (
            f"lr {lr_text(low)} was too slow while lr {lr_text(high)} diverged: lr alone does "
            "not separate them here (other parameters matter, or the runs are noisy)"
        )
        return StableRange(low, high, (), note)
    inside = sorted(
        {
            p.lr
            for p in points
            if p.outcome == "ok" and (low is None or p.lr > low) and (high is None or p.lr < high)
        }
    )
    parts = []
    if low is None:
        smallest = lr_text(lrs[0])
        parts.append(f"no lr tried was too slow (smallest {smallest}): the lower end is open")
    else:
        parts.append(f"lrs <= {lr_text(low)} were too slow")
    if high is None:
        parts.append(f"none diverged (largest {lr_text(lrs[-1])}): the upper end is open")
    else:
        parts.append(f"lrs >= {lr_text(high)} diverged")
    if not inside:
        parts.append("no lr tried lies in between and trained well")
    return StableRange(low, high, tuple(inside), "; ".join(parts))


def _key(config: TrialConfig) -> tuple[str, str]:
    # str() so that an int, "full" and None sort together without comparing types.
    return (config.optimizer or "", "" if config.batch_size is None else str(config.batch_size))


def lr_groups(trials: Sequence[SweepTrial], metric: str, goal: Goal) -> tuple[LrGroup, ...]:
    """Every trial with data and an lr, grouped by (optimizer, batch size), by lr."""
    grouped: dict[tuple[str, str], list[tuple[TrialConfig, LrPoint]]] = defaultdict(list)
    for t in trials:
        config = config_of(t.spec)
        if config.lr is None or not t.has_data:
            continue
        figures = t.metrics.get(metric)
        point = LrPoint(
            trial_id=t.trial_id,
            number=t.number,
            status=t.status,
            lr=config.lr,
            final=figures.final if figures else None,
            best=figures.best(goal) if figures else None,
            outcome=t.outcome(),
        )
        grouped[_key(config)].append((config, point))
    out = []
    for key in sorted(grouped, key=_sortable):
        members = grouped[key]
        points = tuple(sorted((p for _, p in members), key=lambda p: (p.lr, p.number)))
        config = members[0][0]
        out.append(LrGroup(config.optimizer, config.batch_size, points, _stable(points)))
    return tuple(out)


def _sortable(key: tuple[str, str]) -> tuple[str, int, str]:
    optimizer, batch = key
    return (optimizer, int(batch) if batch.isdigit() else 2**62, batch)


@dataclass(frozen=True)
class BatchBest:
    batch_size: int
    lr: float
    trial_id: int
    value: float  # the sweep metric of that trial
    at_edge: bool  # the best lr is the smallest or largest tried: the optimum may lie beyond

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "trial_id": self.trial_id,
            "value": json_value(self.value),
            "at_edge": self.at_edge,
        }


@dataclass(frozen=True)
class ScalingFit:
    optimizer: str | None
    points: tuple[BatchBest, ...]  # by batch size
    slope: float | None  # None: not enough batch sizes
    rule: str | None  # the closer of "linear" and "sqrt"; None without a slope
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "points": [p.to_dict() for p in self.points],
            "slope": None if self.slope is None else round(self.slope, 3),
            "rule": self.rule,
            "note": self.note,
        }


def _batch_best(group: LrGroup, by_id: dict[int, SweepTrial], score: Score) -> BatchBest | None:
    """The best-scoring lr of one batch size; None unless it tried two lrs or more."""
    if not isinstance(group.batch_size, int) or len(group.lrs) < 2:
        return None
    scored = [(s, p) for p in group.points if (s := score(by_id[p.trial_id])) is not None]
    if not scored:
        return None
    _, point = min(scored, key=lambda sp: (sp[0], sp[1].number))
    lrs = group.lrs
    return BatchBest(
        batch_size=group.batch_size,
        lr=point.lr,
        trial_id=point.trial_id,
        value=point.final if point.final is not None else math.nan,
        at_edge=point.lr in (lrs[0], lrs[-1]),
    )


def _fit(optimizer: str | None, points: list[BatchBest]) -> ScalingFit:
    sizes = ", ".join(str(p.batch_size) for p in points)
    if len(points) < 2:
        note = (
            "not enough batch sizes: the scaling rule needs the best lr at two batch sizes "
            f"or more, each with two lrs or more tried (have: {sizes or 'none'})"
        )
        return ScalingFit(optimizer, tuple(points), None, None, note)
    x = np.log([float(p.batch_size) for p in points])
    y = np.log([p.lr for p in points])
    slope = float(np.polyfit(x, y, 1)[0])
    rule = min(RULES, key=lambda r: abs(slope - RULES[r]))
    note = (
        f"log(best lr) vs log(batch size) over batch sizes {sizes}: slope {slope:.2f}, "
        f"closer to the {rule} rule (slope {RULES[rule]:g})"
    )
    if abs(slope) < FLAT:
        note += "; the best lr hardly moves with batch size, so neither rule applies"
    elif abs(slope - RULES[rule]) > RULE_TOLERANCE:
        note += ", but it fits neither rule well"
    edges = [str(p.batch_size) for p in points if p.at_edge]
    if edges:
        note += (
            f"; the best lr is at the edge of the lrs tried for batch size {', '.join(edges)}, "
            "so the true best may lie beyond it and the slope is uncertain"
        )
    return ScalingFit(optimizer, tuple(points), slope, rule, note)


def scaling_fits(
    groups: Sequence[LrGroup], trials: Sequence[SweepTrial], score: Score
) -> tuple[ScalingFit, ...]:
    """One fit per optimizer with a numeric batch size; "not enough batch sizes" says so."""
    by_id = {t.trial_id: t for t in trials}
    per_optimizer: dict[str | None, list[LrGroup]] = defaultdict(list)
    for group in groups:
        per_optimizer[group.optimizer].append(group)
    out = []
    for optimizer, members in per_optimizer.items():
        if not any(isinstance(g.batch_size, int) for g in members):
            continue
        points = [b for g in members if (b := _batch_best(g, by_id, score)) is not None]
        out.append(_fit(optimizer, sorted(points, key=lambda p: p.batch_size)))
    return tuple(out)
