"""Which past trials are comparable to a recommendation query, and how far the match was
widened, in words (services.analyzer.lr_history ranks what this admits).

A past trial always shares the query's task, model and optimizer. Beyond that, each tier
admits more than the one before, and the first tier with enough ranked trials is used:

0. `exact`: the same batch size and schedule, the same optimizer knobs (momentum and
   nesterov for SGD, momentum for RMSprop, betas for Adam and AdamW) and, when the query
   names a budget, one within BUDGET_FACTOR of it;
1. `batch_size_adjusted`: other batch sizes too, their lrs moved by the query's rule;
2. `optimizer_near`: knobs near the asked ones: a momentum (or beta) whose averaging
   horizon 1 / (1 - m) is within HORIZON_FACTOR of the asked one's (0.9: 0.8 to 0.95),
   nesterov either way;
3. `any_budget`: trials of any length;
4. `any_schedule`: any schedule too.
Momentum 0 and 0.9 are never pooled: the effective step of heavy-ball SGD is
lr / (1 - momentum), ten times apart. A tier that admits nothing new for the query (no
budget asked, an optimizer without knobs) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.specs import OPTIMIZERS

__all__ = [
    "BUDGET_FACTOR",
    "HORIZON_FACTOR",
    "KNOBS",
    "LrQuery",
    "Rule",
    "RunBudget",
    "Tier",
    "Used",
    "budget_matches",
    "budget_text",
    "default_knobs",
    "knobs_match",
    "knobs_of",
    "matched_on",
    "plain_text",
    "run_budget",
    "tiers_for",
    "widened",
]

BUDGET_FACTOR = 2.0
HORIZON_FACTOR = 2.0
# The optimizer settings that move the best lr; a query matches these and no others.
KNOBS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "rmsprop": ("momentum",),
    "adam": ("betas",),
    "adamw": ("betas",),
}


Rule = Literal["linear", "sqrt", "none"]


@dataclass(frozen=True)
class LrQuery:
    task: str
    model: str | None  # None: the task has no model choice
    optimizer: str
    batch_size: int | Literal["full"]
    schedule: str
    rule: Rule  # how lrs move between batch sizes
    # The optimizer's knobs to match (KNOBS): {"momentum": 0.9, "nesterov": False}.
    optimizer_params: Mapping[str, Any] = field(default_factory=dict)
    max_steps: int | None = None  # the budget to match, in steps or epochs (or neither)
    epochs: int | None = None

    @property
    def budget_asked(self) -> bool:
        return self.max_steps is not None or self.epochs is not None


@dataclass(frozen=True)
class Tier:
    name: str
    other_batch_sizes: bool = False
    near_knobs: bool = False
    any_budget: bool = False
    any_schedule: bool = False


_TIERS = (
    Tier("exact"),
    Tier("batch_size_adjusted", other_batch_sizes=True),
    Tier("optimizer_near", other_batch_sizes=True, near_knobs=True),
    Tier("any_budget", other_batch_sizes=True, near_knobs=True, any_budget=True),
    Tier(
        "any_schedule", other_batch_sizes=True, near_knobs=True, any_budget=True, any_schedule=True
    ),
)


@dataclass(frozen=True)
class RunBudget:
    """How long a trial was to train: its budget as written and the steps it trained."""

    max_steps: int | None
    epochs: int | None
    steps: int | None  # max_steps, or the steps an epochs budget came to when it ran out


def tiers_for(query: LrQuery) -> list[Tier]:
    return [
        t
        for t in _TIERS
        if not (t.name == "optimizer_near" and not query.optimizer_params)
        and not (t.name == "any_budget" and not query.budget_asked)
    ]


# -- optimizer knobs ------------------------------------------------------------------------
def default_knobs(optimizer: str) -> dict[str, Any]:
    """The knobs of `optimizer` at their defaults (what a trial that set none trained with)."""
    fields = OPTIMIZERS[optimizer].model_fields
    return {knob: _plain(fields[knob].default) for knob in KNOBS.get(optimizer, ())}


def knobs_of(spec: Mapping[str, Any], optimizer: str) -> dict[str, Any]:
    """A stored trial spec's knobs (the optimizer's defaults where the spec has none)."""
    opt = spec.get("optimizer")
    given = opt if isinstance(opt, Mapping) else {}
    defaults = default_knobs(optimizer)
    return {k: _plain(given.get(k, v)) for k, v in defaults.items()}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


def _horizon(m: float) -> float:
    return math.inf if m >= 1 else 1.0 / (1.0 - m)


def _near(asked: Any, got: Any) -> bool:
    if isinstance(asked, bool) or isinstance(got, bool):
        return True  # nesterov: either way, once widened
    if isinstance(asked, list) and isinstance(got, list) and len(asked) == len(got):
        return all(_near(a, g) for a, g in zip(asked, got, strict=True))
    if isinstance(asked, int | float) and isinstance(got, int | float):
        if asked >= 1 or got >= 1:
            return bool(asked == got)
        ratio = _horizon(float(got)) / _horizon(float(asked))
        return 1 / HORIZON_FACTOR <= ratio <= HORIZON_FACTOR
    return bool(asked == got)


def knobs_match(asked: Mapping[str, Any], got: Mapping[str, Any], near: bool) -> bool:
    return all(
        (_near(value, got.get(knob)) if near else _same(value, got.get(knob)))
        for knob, value in asked.items()
    )


def _same(asked: Any, got: Any) -> bool:
    if isinstance(asked, list) and isinstance(got, list):
        return len(asked) == len(got) and all(map(_same, asked, got))
    if isinstance(asked, float | int) and isinstance(got, float | int):
        return math.isclose(float(asked), float(got), rel_tol=1e-9, abs_tol=1e-12)
    return bool(asked == got)


def _band(m: float) -> str:
    """The momenta near m, as "[0.8, 0.95]"."""
    if m >= 1:
        return f"[{m:g}, {m:g}]"
    low = max(0.0, 1 - HORIZON_FACTOR * (1 - m))
    high = 1 - (1 - m) / HORIZON_FACTOR
    return f"[{low:.4g}, {high:.4g}]"


# -- budget ---------------------------------------------------------------------------------
def run_budget(spec: Mapping[str, Any], status: str, last_step: int | None) -> RunBudget:
    budget = spec.get("budget")
    budget = budget if isinstance(budget, Mapping) else {}
    max_steps, epochs = budget.get("max_steps"), budget.get("epochs")
    max_steps = max_steps if isinstance(max_steps, int) else None
    epochs = epochs if isinstance(epochs, int) else None
    steps = max_steps
    if steps is None and status == "succeeded" and last_step is not None:
        steps = last_step + 1  # an epochs budget that ran out: its length in steps
    return RunBudget(max_steps, epochs, steps)


def budget_matches(max_steps: int | None, epochs: int | None, run: RunBudget) -> bool:
    """Within BUDGET_FACTOR of the asked budget, in the unit asked (True if none asked);
    a trial whose length in that unit is unknown does not match."""
    asked, got = (max_steps, run.steps) if max_steps is not None else (epochs, run.epochs)
    if asked is None:
        return True
    if got is None:
        return False
    return 1 / BUDGET_FACTOR <= got / asked <= BUDGET_FACTOR


def budget_text(max_steps: int | None, epochs: int | None) -> str:
    if max_steps is not None:
        low, high = _bounds(max_steps)
        return f"max_steps {max_steps} (trials of {low} to {high} steps)"
    assert epochs is not None
    low, high = _bounds(epochs)
    return f"epochs {epochs} (trials of {low} to {high} epochs)"


def _bounds(n: int) -> tuple[int, int]:
    return math.ceil(n / BUDGET_FACTOR), math.floor(n * BUDGET_FACTOR)


def _span(values: Sequence[float], unit: str) -> str:
    if not values:
        return f"no trial's {unit} is known"
    low, high = min(values), max(values)
    return f"{low:g} {unit}" if low == high else f"{low:g} to {high:g} {unit}"


# -- what the answer says -------------------------------------------------------------------
@dataclass(frozen=True)
class Used:
    """What the trials behind an answer had, for the sentences that say so."""

    batch_sizes: tuple[int | str, ...]
    knobs: tuple[Mapping[str, Any], ...]
    budgets: tuple[RunBudget, ...]
    schedules: tuple[str, ...]


def _differing(query: LrQuery, used: Used) -> set[str]:
    """The parts of the query some counted trial does not share."""
    out = set()
    if any(b != query.batch_size for b in used.batch_sizes):
        out.add("batch_size")
    for knob, value in query.optimizer_params.items():
        if any(not _same(value, k.get(knob)) for k in used.knobs):
            out.add(knob)
    asked = (query.max_steps, query.epochs)
    if query.budget_asked and any(not budget_matches(*asked, b) for b in used.budgets):
        out.add("budget")
    if any(s != query.schedule for s in used.schedules):
        out.add("schedule")
    return out


def matched_on(query: LrQuery, used: Used) -> list[str]:
    """The parts of the query every counted trial shares (the budget: within the factor)."""
    parts = ["task", *(["model"] if query.model else []), "optimizer"]
    parts += [*query.optimizer_params, "batch_size", "schedule"]
    parts += ["budget"] if query.budget_asked else []
    differing = _differing(query, used)
    return [p for p in parts if p not in differing]


def widened(query: LrQuery, used: Used) -> list[str]:
    """One sentence per part of the query some counted trial does not share (it was let
    go of for want of trials), with what the counted trials had there instead."""
    differing, out = _differing(query, used), []
    if "batch_size" in differing:
        others = sorted({str(b) for b in used.batch_sizes if b != query.batch_size})
        out.append(
            f"batch_size: too few trials at batch size {query.batch_size}; trials at "
            f"{', '.join(others)} count, their lr moved to batch size {query.batch_size} by "
            f"the {query.rule} rule"
        )
    for knob, value in query.optimizer_params.items():
        if knob not in differing:
            continue
        seen = sorted({plain_text(k.get(knob)) for k in used.knobs})
        if isinstance(value, bool):
            how = "trials with and without it count"
        elif isinstance(value, list):
            bands = ", ".join(f"beta{i + 1} in {_band(float(b))}" for i, b in enumerate(value))
            how = f"used {bands}"
        else:
            how = f"used {knob} in {_band(float(value))}"
        out.append(
            f"{knob}: too few trials with {knob} {plain_text(value)}; {how} "
            f"(the trials had {', '.join(seen)})"
        )
    if "budget" in differing:
        steps = [float(b.steps) for b in used.budgets if b.steps is not None]
        unknown = len(used.budgets) - len(steps)
        more = f"; {unknown} of a length not known in steps" if unknown and steps else ""
        out.append(
            f"budget: too few trials near {budget_text(query.max_steps, query.epochs)}; "
            f"trials of any length count (they trained {_span(steps, 'steps')}{more})"
        )
    if "schedule" in differing:
        others = sorted(set(used.schedules))
        out.append(
            f"schedule: too few trials with schedule {query.schedule}; trials of any "
            f"schedule count ({', '.join(others)})"
        )
    return out


def plain_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}" if isinstance(value, int | float) else str(value)
