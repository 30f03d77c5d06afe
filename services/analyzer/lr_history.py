"""A suggested lr and range learned from finished trials (pure: the caller reads them).

Comparable trials share the task, model and optimizer. The nearest match is tried first
and widened only while it holds fewer than MIN_EVIDENCE ranked trials
(services.analyzer.history_match): the same batch size, schedule, optimizer knobs
(momentum, nesterov, betas) and budget first; then other batch sizes, each trial's lr
moved to the asked batch size by the linear (lr x bs/bs') or square-root rule; then
knobs near the asked ones; then any budget; then any schedule. The answer lists what
every counted trial matched (`matched_on`) and each widening in words (`widened`).

A trial's lr is its effective lr (after its own lr_scaling). Ranked trials ended well
(succeeded, no divergence or stall in their cached analysis) with a finite final value of
their sweep's metric; when sweeps used different metrics, the metric most trials share
ranks them. The suggestion is the geometric mean of the best third's lrs (at least
three), the range their span; trials that diverged cap it from above, trials too slow
floor it from below. Fewer than MIN_EVIDENCE ranked trials give no number.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.analyzer.history_match import (
    LrQuery,
    Rule,
    RunBudget,
    Tier,
    Used,
    budget_matches,
    budget_text,
    knobs_match,
    knobs_of,
    matched_on,
    plain_text,
    run_budget,
    tiers_for,
    widened,
)
from services.analyzer.sweep_inputs import SLOW_KINDS, config_of
from services.analyzer.sweep_lr import lr_text

__all__ = [
    "MIN_EVIDENCE",
    "HistoryRun",
    "LrQuery",
    "LrRecommendation",
    "Rule",
    "recommend_from_history",
]

MIN_EVIDENCE = 3
Outcome = Literal["ok", "diverged", "too_slow", "unranked"]
_EXPONENT = {"linear": 1.0, "sqrt": 0.5}


@dataclass(frozen=True)
class HistoryRun:
    trial_id: int
    sweep_id: int
    status: str
    spec: Mapping[str, Any]
    metric: str
    goal: str
    final: float | None  # the sweep metric's last value
    final_train_loss: float | None = None
    kinds: frozenset[str] | None = None  # finding kinds of its cached analysis, if any
    stop_reason: str | None = None
    last_step: int | None = None


@dataclass(frozen=True)
class Evidence:
    trial_id: int
    sweep_id: int
    lr: float  # as it trained
    lr_at_batch_size: float  # moved to the asked batch size
    batch_size: int | str
    schedule: str
    outcome: Outcome
    final: float | None
    optimizer_params: dict[str, Any] = field(default_factory=dict)  # its knobs
    budget: RunBudget = field(default_factory=lambda: RunBudget(None, None, None))

    def to_dict(self) -> dict[str, Any]:
        final = self.final if self.final is None or math.isfinite(self.final) else None
        return {**dataclasses.asdict(self), "final": final}


@dataclass(frozen=True)
class LrRecommendation:
    enough_history: bool
    reasoning: str
    lr: float | None = None
    low: float | None = None
    high: float | None = None
    match: str | None = None  # the tier: exact, batch_size_adjusted, ... (history_match)
    rule: Rule | None = None  # the batch size rule, when one was applied
    metric: str | None = None
    goal: str | None = None
    ranked: tuple[Evidence, ...] = ()  # best first
    top: tuple[int, ...] = ()  # the trials behind the suggestion
    diverged: tuple[Evidence, ...] = ()
    too_slow: tuple[Evidence, ...] = ()
    considered: int = 0  # comparable trials at the chosen match
    notes: tuple[str, ...] = field(default_factory=tuple)
    matched_on: tuple[str, ...] = ()  # what every counted trial shares with the query
    widened: tuple[str, ...] = ()  # each part of the query let go of, in words

    def to_dict(self) -> dict[str, Any]:
        return {
            "enough_history": self.enough_history,
            "lr": self.lr,
            "range": None if self.low is None else {"low": self.low, "high": self.high},
            "match": self.match,
            "batch_size_rule": self.rule,
            "metric": None if self.metric is None else {"name": self.metric, "goal": self.goal},
            "reasoning": self.reasoning,
            "notes": list(self.notes),
            "matched_on": list(self.matched_on),
            "widened": list(self.widened),
            "evidence": {
                "count": len(self.ranked),
                "considered": self.considered,
                "trial_ids": [e.trial_id for e in self.ranked],
                "top_trial_ids": list(self.top),
                "diverged_trial_ids": [e.trial_id for e in self.diverged],
                "too_slow_trial_ids": [e.trial_id for e in self.too_slow],
            },
            "trials": [e.to_dict() for e in (*self.ranked, *self.diverged, *self.too_slow)],
        }


def _outcome(run: HistoryRun) -> Outcome:
    losses = (run.final_train_loss, run.final)
    nonfinite = any(v is not None and not math.isfinite(v) for v in losses)
    kinds = run.kinds or frozenset()
    diverged_stop = run.status == "pruned" and "diverg" in (run.stop_reason or "")
    if "divergence" in kinds or diverged_stop or nonfinite:
        return "diverged"
    if kinds & SLOW_KINDS:
        return "too_slow"
    # Pruned by early stopping or failed: its final value is not comparable.
    if run.status != "succeeded" or run.final is None:
        return "unranked"
    return "ok"


def _model(spec: Mapping[str, Any]) -> Any:
    task = spec.get("task")
    return task.get("model") if isinstance(task, Mapping) else None


def _schedule(spec: Mapping[str, Any]) -> str:
    schedule = spec.get("schedule")
    if isinstance(schedule, Mapping):
        return str(schedule.get("name", "constant"))
    return str(schedule or "constant")


def _evidence(run: HistoryRun, query: LrQuery, tier: Tier) -> Evidence | None:
    """The run moved to the query's batch size, or None if it is not comparable at `tier`."""
    config = config_of(run.spec)
    if config.lr is None or config.batch_size is None or _model(run.spec) != query.model:
        return None
    schedule = _schedule(run.spec)
    if schedule != query.schedule and not tier.any_schedule:
        return None
    knobs = knobs_of(run.spec, query.optimizer)
    if not knobs_match(query.optimizer_params, knobs, near=tier.near_knobs):
        return None
    budget = run_budget(run.spec, run.status, run.last_step)
    if not tier.any_budget and not budget_matches(query.max_steps, query.epochs, budget):
        return None
    lr = config.lr
    if config.batch_size != query.batch_size:
        if not tier.other_batch_sizes or query.rule == "none":
            return None
        if config.batch_size == "full" or query.batch_size == "full":
            return None  # the size of a full batch depends on the data: no ratio
        lr *= (query.batch_size / int(config.batch_size)) ** _EXPONENT[query.rule]
    return Evidence(
        trial_id=run.trial_id,
        sweep_id=run.sweep_id,
        lr=config.lr,
        lr_at_batch_size=lr,
        batch_size=config.batch_size,
        schedule=schedule,
        outcome=_outcome(run),
        final=run.final,
        optimizer_params=knobs,
        budget=budget,
    )


def _ranked_metric(runs: Sequence[tuple[HistoryRun, Evidence]]) -> tuple[str, str] | None:
    counts = Counter((r.metric, r.goal) for r, _ in runs)
    if not counts:
        return None
    # The most shared metric; val_loss on a tie, then by name, so the choice is stable.
    return max(counts, key=lambda k: (counts[k], k[0] == "val_loss", k))


def recommend_from_history(query: LrQuery, runs: Sequence[HistoryRun]) -> LrRecommendation:
    chosen: list[tuple[HistoryRun, Evidence]] = []
    ranked: list[tuple[HistoryRun, Evidence]] = []
    tiers = tiers_for(query)
    tier = tiers[0]
    for tier in tiers:
        chosen = [(r, e) for r in runs if (e := _evidence(r, query, tier)) is not None]
        ranked = [
            (r, e)
            for r, e in chosen
            if e.outcome == "ok" and r.final is not None and math.isfinite(r.final)
        ]
        if len(ranked) >= MIN_EVIDENCE:
            break
    metric = _ranked_metric(ranked)
    other_metric = 0
    if metric is not None:
        other_metric = len(ranked)
        ranked = [(r, e) for r, e in ranked if (r.metric, r.goal) == metric]
        other_metric -= len(ranked)
    if len(ranked) < MIN_EVIDENCE:
        return _too_little(query, len(ranked), len(chosen))
    name, goal = metric or ("", "")
    sign = 1.0 if goal == "minimize" else -1.0
    ranked.sort(key=lambda re: (sign * (re[0].final or 0.0), re[1].trial_id))
    best = [e for _, e in ranked]
    top = best[: max(MIN_EVIDENCE, math.ceil(len(best) / 3))]
    lrs = [e.lr_at_batch_size for e in top]
    lr = math.exp(sum(math.log(x) for x in lrs) / len(lrs))
    low, high = min(lrs), max(lrs)
    notes = []
    if not query.budget_asked:
        steps = [e.budget.steps for e in best if e.budget.steps is not None]
        if steps and max(steps) > 2 * min(steps):
            notes.append(
                f"no budget asked: the trials trained {min(steps)} to {max(steps)} steps; "
                "pass max_steps or epochs to match the length you will train"
            )
    if other_metric:
        notes.append(f"{other_metric} trial(s) of sweeps ranked by another metric are left out")
    if high / low < 1.5:
        low, high = lr / 3, lr * 3
        notes.append(
            f"the best trials all used about lr {lr_text(lr)}: the range is 3x either side"
        )
    diverged = tuple(e for _, e in chosen if e.outcome == "diverged")
    slow = tuple(e for _, e in chosen if e.outcome == "too_slow")
    if diverged:
        cap = min(e.lr_at_batch_size for e in diverged)
        if cap <= lr:
            notes.append(
                f"a trial diverged at lr {lr_text(cap)}, at or below the suggestion: the history "
                "is noisy (other settings differ), so start at the low end"
            )
        elif cap < high:
            high = cap
            notes.append(f"capped below lr {lr_text(cap)}, where a comparable trial diverged")
    if slow:
        floor = max(e.lr_at_batch_size for e in slow)
        if floor < lr and floor > low:
            low = floor
            notes.append(f"floored at lr {lr_text(floor)}, where a comparable trial was too slow")
    used = _used([*best, *diverged, *slow])
    shared, said = matched_on(query, used), widened(query, used)
    reasoning = (
        f"the {len(top)} best of {len(best)} comparable finished trials by final {name} "
        f"({goal}) used lrs {lr_text(min(lrs))} to {lr_text(max(lrs))} "
        f"(at batch size {query.batch_size}); their geometric mean is {lr_text(lr)}. "
        + _match_text(query, shared, said)
    )
    return LrRecommendation(
        enough_history=True,
        reasoning=reasoning,
        lr=lr,
        low=low,
        high=high,
        match=tier.name,
        rule=None if "batch_size" in shared else query.rule,
        metric=name,
        goal=goal,
        ranked=tuple(best),
        top=tuple(e.trial_id for e in top),
        diverged=diverged,
        too_slow=slow,
        considered=len(chosen),
        notes=tuple(notes),
        matched_on=tuple(shared),
        widened=tuple(said),
    )


def _used(evidence: Sequence[Evidence]) -> Used:
    return Used(
        batch_sizes=tuple(e.batch_size for e in evidence),
        knobs=tuple(e.optimizer_params for e in evidence),
        budgets=tuple(e.budget for e in evidence),
        schedules=tuple(e.schedule for e in evidence),
    )


def _match_text(query: LrQuery, shared: Sequence[str], said: Sequence[str]) -> str:
    values = {
        "task": f"task {query.task}",
        "model": f"model {query.model}",
        "optimizer": f"optimizer {query.optimizer}",
        "batch_size": f"batch size {query.batch_size}",
        "schedule": f"schedule {query.schedule}",
        "budget": f"budget {budget_text(query.max_steps, query.epochs)}"
        if query.budget_asked
        else "",
        **{k: f"{k} {plain_text(v)}" for k, v in query.optimizer_params.items()},
    }
    same = ", ".join(values[part] for part in shared)
    if not said:
        return f"Matched exactly: {same}."
    return f"Matched {same}. Widened: " + "; ".join(said) + "."


def _too_little(query: LrQuery, ranked: int, considered: int) -> LrRecommendation:
    reasoning = (
        f"too little history: {ranked} comparable trial(s) ended well with a final metric "
        f"({considered} comparable in all), and a suggestion needs at least {MIN_EVIDENCE}. "
        f"Run an LR range test (POST /lr-find with task {query.task}, optimizer "
        f"{query.optimizer}, batch size {query.batch_size}) for a first estimate."
    )
    return LrRecommendation(enough_history=False, reasoning=reasoning, considered=considered)
