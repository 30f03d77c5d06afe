"""The plain-language part of a sweep's analysis: what to do next, in a few clauses.

Each clause is built from the figures it quotes: the best trial, the lr range of its
(optimizer, batch size) group, the most frequent problems with their onset, and the
batch-size scaling fit. Nothing is said that the data does not show.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence

from services.analyzer.findings import KINDS
from services.analyzer.recommend import fmt, sig
from services.analyzer.sweep_inputs import SLOW_KINDS, SweepTrial, config_of
from services.analyzer.sweep_lr import RULE_TOLERANCE, RULES, LrGroup, ScalingFit, lr_text

__all__ = ["REMEDIES", "advise"]

REMEDIES = {
    "divergence": "lower the lr, add warmup or clip gradients",
    "oscillation": "lower the lr or add momentum",
    "slow_convergence": "raise the lr or train longer",
    "plateau": "raise the lr or use a schedule that changes it",
    "overfitting": "add weight_decay or stop early",
    "underfitting": "raise the lr, train longer or add capacity",
    "exploding_gradients": "clip gradients (regularization.grad_clip_norm)",
    "vanishing_gradients": "check the initialization and normalization",
}
MAX_KIND_CLAUSES = 3
# What the lr range explains in the trials at its ends: a run that diverged also had its
# gradients explode; one too slow may also show as underfitting or a plateau.
EXPLAINED = {"diverged": {"divergence", "exploding_gradients"}, "too_slow": set(SLOW_KINDS)}


def _range(lo: float, hi: float) -> str:
    return f"log-uniform [{lr_text(lo)}, {lr_text(hi)}]"


def _best_clause(best: SweepTrial | None, metric: str) -> str:
    if best is None:
        return f"no trial ended with a finite {metric} without diverging, so none can be ranked"
    config = config_of(best.spec)
    parts = [f"best {metric} {fmt(best.metrics[metric].final)} from trial #{best.number}"]
    setting = []
    if config.lr is not None:
        setting.append(f"lr {lr_text(config.lr)}")
    if config.optimizer:
        setting.append(f"with {config.optimizer}")
    if config.batch_size is not None:
        setting.append(f"batch size {config.batch_size}")
    if setting:
        parts.append(", ".join(setting).replace(", with", " with"))
    return ": ".join(parts)


def _narrow(group: LrGroup, best_lr: float) -> str:
    lrs = group.lrs
    i = lrs.index(best_lr)
    lo = lrs[i - 1] if i > 0 else best_lr / 10
    hi = lrs[i + 1] if i + 1 < len(lrs) else best_lr * 10
    diverged = group.stable.high
    if diverged is not None and best_lr < diverged <= hi:
        hi = math.sqrt(best_lr * diverged)  # halfway (in log) to the lr that blew up
    clause = f"narrow the next sweep to {_range(lo, hi)}"
    if i == 0 and group.stable.low is None:
        clause += " (the best lr is the smallest tried: the range reaches below it)"
    elif i + 1 == len(lrs) and group.stable.high is None:
        clause += " (the best lr is the largest tried: the range reaches above it)"
    return clause


def _range_clauses(group: LrGroup, best: SweepTrial | None) -> tuple[list[str], set[str]]:
    """The clauses about the lr range, and the outcomes they explain in this group."""
    lrs, label = group.lrs, group.label()
    if len(lrs) == 1:
        only = lrs[0]
        clause = (
            f"every {label} trial used lr {lr_text(only)}: sweep optimizer.lr over "
            f"{_range(only / 10, only * 10)} to find the stable range"
        )
        return [clause], set()
    outcomes = {p.outcome for p in group.points}
    if outcomes == {"diverged"}:
        clause = (
            f"every lr tried with {label} diverged (smallest {lr_text(lrs[0])}): "
            f"try {_range(lrs[0] / 100, lrs[0] / 3)}"
        )
        return [clause], {"diverged"}
    if outcomes == {"too_slow"}:
        clause = (
            f"every lr tried with {label} was too slow (largest {lr_text(lrs[-1])}): "
            f"try {_range(lrs[-1] * 3, lrs[-1] * 100)}"
        )
        return [clause], {"too_slow"}
    stable = group.stable
    out: list[str] = []
    covered: set[str] = set()
    if stable.high is not None:
        out.append(f"lrs >= {lr_text(stable.high)} diverge")
        covered.add("diverged")
    if stable.low is not None:
        out.append(f"lrs <= {lr_text(stable.low)} are too slow")
        covered.add("too_slow")
    if stable.low is not None and stable.high is not None and stable.low >= stable.high:
        out.append(stable.note)
        return out, set()
    best_lr = config_of(best.spec).lr if best is not None else None
    if best_lr is not None and best_lr in lrs:
        out.append(_narrow(group, best_lr))
    return out, covered


def _kind_clauses(analysed: Sequence[SweepTrial], covered: set[tuple[int, str]]) -> list[str]:
    """The most frequent problems with their onset and remedy. A (trial, kind) the lr
    range already explains (its diverging and too-slow ends) is not repeated."""
    counts: Counter[str] = Counter()
    steps: dict[str, list[int]] = {}
    for t in analysed:
        for f in t.findings or ():
            if f.kind in REMEDIES and (t.trial_id, f.kind) not in covered:
                counts[f.kind] += 1
                if f.step is not None:
                    steps.setdefault(f.kind, []).append(f.step)
    if not counts:
        if covered or any(t.kinds - {"healthy"} for t in analysed):
            return []
        return [f"all {len(analysed)} analysed trials are healthy"]
    order = sorted(counts, key=lambda k: (-counts[k], KINDS.index(k)))
    out = []
    for kind in order[:MAX_KIND_CLAUSES]:
        onset = ""
        if kind in steps:
            onset = f" after step ~{int(sig(statistics.median(steps[kind]), 2))}"
        name = kind.replace("_", " ")
        out.append(f"{name} in {counts[kind]} of {len(analysed)} trials{onset}: {REMEDIES[kind]}")
    return out


def _scaling_clauses(fits: Sequence[ScalingFit]) -> list[str]:
    out = []
    for fit in fits:
        if fit.slope is None or fit.rule is None:
            continue
        who = f" with {fit.optimizer}" if fit.optimizer else ""
        clause = f"best lr vs batch size{who}: slope {fit.slope:.2f}, closer to the {fit.rule} rule"
        fits_well = abs(fit.slope - RULES[fit.rule]) <= RULE_TOLERANCE
        if fits_well and not any(p.at_edge for p in fit.points):
            clause += f" (lr_scaling.rule={fit.rule} keeps the lr right as batch size changes)"
        out.append(clause)
    return out


def advise(
    trials: Sequence[SweepTrial],
    groups: Sequence[LrGroup],
    fits: Sequence[ScalingFit],
    best: SweepTrial | None,
    metric: str,
) -> tuple[str, ...]:
    """The clauses of the summary, most important first."""
    analysed = [t for t in trials if t.has_data]
    live = sum(t.live for t in trials)
    if not analysed:
        return (f"no trial has logged metrics yet ({live} queued or running): nothing to analyse",)
    out = [_best_clause(best, metric)]
    group = None
    if best is not None:
        mine = (g for g in groups if any(p.trial_id == best.trial_id for p in g.points))
        group = next(mine, None)
    if group is None and groups:
        group = max(groups, key=lambda g: len(g.points))
    covered: set[tuple[int, str]] = set()
    if group is not None:
        clauses, outcomes = _range_clauses(group, best)
        out += clauses
        covered = {
            (p.trial_id, kind)
            for p in group.points
            if p.outcome in outcomes
            for kind in EXPLAINED[p.outcome]
        }
    out += _kind_clauses(analysed, covered)
    out += _scaling_clauses(fits)
    if live:
        out.append(
            f"{live} of {len(trials)} trials are still queued or running: "
            "this analysis is provisional"
        )
    return tuple(out)
