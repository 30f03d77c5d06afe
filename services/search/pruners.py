"""Early stopping decisions: whether a running trial, at its k-th evaluation of the sweep's
metric, is stopped by the sweep's pruner, and why, in words.

The intermediate value is the metric's value at the trial's k-th evaluation and the
resource is k (see `specs.early_stop`). The other trials come from the store; the decision
builds an in-memory Optuna study of them (`search.study`), adds the trial as RUNNING, and
asks the pruner once:

- asha: Optuna's SuccessiveHalvingPruner. Its bookkeeping (the value each trial had at
  each rung it completed) is rebuilt from the stored values: a trial with n evaluations
  completed every rung at or below n, with its value at that evaluation.
- median: Optuna's MedianPruner (the median is over finished trials, as in Optuna).
- hyperband: W&B's early_terminate rule, which the spec's fields describe (min_iter or
  max_iter and s, eta): fixed bands (`search.hyperband`); at the highest band a trial has
  passed, it stops when its best value so far (with `strict`, as W&B's strict: its value at
  that band) is worse than the value that ranks int(n / eta)-th (0-based) among the n
  trials that reached that band. As in W&B's code,
  band b is a trial's value at index b of its history, its (b + 1)-th evaluation, so a
  W&B file stops the same trials here as under W&B. Optuna's
  HyperbandPruner is a different algorithm (brackets of successive halving, trials assigned
  by hash), so the rule is a small Optuna `BasePruner` over the same study.

Non-finite values count as the worst possible. A diverged trial is stopped by the runner
and the live analyzer whatever the pruner says.
"""

from __future__ import annotations

import abc
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.pruners import BasePruner, MedianPruner, SuccessiveHalvingPruner
from optuna.trial import FrozenTrial, TrialState

from services.domain.records import PastTrial, TrialStatus
from services.search.hyperband import hyperband_rungs
from services.search.study import Goal, add_trial, new_study
from services.specs.early_stop import AshaStop, EarlyStop, HyperbandStop, MedianStop

__all__ = ["Decision", "TrialPruner", "pruner_for"]


@dataclass(frozen=True)
class Decision:
    """Asked at one evaluation of a running trial."""

    metric: str
    goal: Goal
    step: int  # the training step of this evaluation
    values: tuple[float, ...]  # the trial's metric at each evaluation so far, this one last
    others: Sequence[PastTrial]  # the sweep's other trials

    @property
    def evaluation(self) -> int:
        return len(self.values)

    def worst(self) -> float:
        return math.inf if self.goal == "minimize" else -math.inf

    def finite(self, value: float) -> float:
        return value if math.isfinite(value) else self.worst()

    def best(self, values: Sequence[float]) -> float:
        cleaned = [self.finite(v) for v in values]
        return min(cleaned) if self.goal == "minimize" else max(cleaned)


class TrialPruner(abc.ABC):
    """Decides whether a trial stops at an evaluation; the reason when it does."""

    name: str

    @abc.abstractmethod
    def prune(self, decision: Decision) -> str | None:
        """None to go on, else why the trial stops (with step, rung and figures)."""

    def _head(self, d: Decision, rung: int | None = None) -> str:
        where = (
            f"evaluation {d.evaluation}"
            if rung is None
            else (f"rung {rung}, evaluation {d.evaluation}")
        )
        return f"pruned by {self.name} at step {d.step} ({where})"


def _decide(
    d: Decision, pruner: BasePruner, attrs: dict[int, dict[str, float]] | None = None
) -> tuple[bool, FrozenTrial]:
    """Ask `pruner` about the trial of `d` in a study of it and the others; also returns
    the trial as the pruner left it (a pruner records its rungs in system attrs).
    `attrs` gives system attrs per trial number (-1: the decided trial)."""
    attrs = attrs or {}
    study = new_study(d.goal, pruner=pruner)
    for past in d.others:
        add_trial(study, past, system_attrs=attrs.get(past.number))
    own = PastTrial(number=-1, status=TrialStatus.RUNNING, values=d.values)
    frozen = add_trial(study, own, system_attrs=attrs.get(-1))
    assert frozen is not None  # a running trial always enters
    pruned = pruner.prune(study, frozen)
    return pruned, study.get_trials(deepcopy=False)[-1]


class AshaPruner(TrialPruner):
    name = "asha"

    def __init__(self, spec: AshaStop) -> None:
        self._spec = spec

    def _rung_at(self, rung: int) -> int:
        s = self._spec
        return int(s.min_resource * s.reduction_factor ** (s.min_early_stopping_rate + rung))

    def _completed(self, d: Decision, values: Sequence[float], before: int) -> dict[str, float]:
        """The rungs a trial with these values completed (rung step < `before`)."""
        out: dict[str, float] = {}
        rung = 0
        while (at := self._rung_at(rung)) < before:
            out[f"completed_rung_{rung}"] = d.finite(values[at - 1])
            rung += 1
        return out

    def prune(self, d: Decision) -> str | None:
        s = self._spec
        pruner = SuccessiveHalvingPruner(
            min_resource=s.min_resource,
            reduction_factor=s.reduction_factor,
            min_early_stopping_rate=s.min_early_stopping_rate,
        )
        attrs = {t.number: self._completed(d, t.values, len(t.values) + 1) for t in d.others}
        attrs[-1] = self._completed(d, d.values, d.evaluation)
        pruned, after = _decide(d, pruner, attrs)
        if not pruned:
            return None
        value = d.values[-1]
        rung = sum(key.startswith("completed_rung_") for key in after.system_attrs) - 1
        if math.isnan(value) or rung < 0:
            return f"{self._head(d)}: {d.metric} is {value}"
        key = f"completed_rung_{rung}"
        peers = [attrs[t.number][key] for t in d.others if key in attrs.get(t.number, {})]
        return (
            f"{self._head(d, rung)}: {d.metric} {value:.4g} not in the top "
            f"1/{s.reduction_factor} of {len(peers) + 1} trials at that rung"
        )


class MedianRulePruner(TrialPruner):
    name = "median"

    def __init__(self, spec: MedianStop) -> None:
        self._spec = spec

    def prune(self, d: Decision) -> str | None:
        s = self._spec
        pruner = MedianPruner(
            n_startup_trials=s.n_startup_trials,
            n_warmup_steps=s.n_warmup_evals,
            interval_steps=s.interval_evals,
        )
        pruned, _ = _decide(d, pruner)
        if not pruned:
            return None
        k = d.evaluation
        finished = [
            t.values[k - 1]
            for t in d.others
            if t.status is TrialStatus.SUCCEEDED and len(t.values) >= k
        ]
        median = statistics.median(finished) if finished else math.nan
        return (
            f"{self._head(d)}: best {d.metric} so far {d.best(d.values):.4g} is worse than "
            f"the median {median:.4g} of {len(finished)} finished trials at that evaluation"
        )


class _WandbHyperband(BasePruner):
    """W&B's hyperband rule as an Optuna pruner (see the module docstring)."""

    def __init__(self, rungs: Sequence[int], eta: float, goal: Goal, strict: bool) -> None:
        self.rungs, self.eta, self.goal, self.strict = list(rungs), eta, goal, strict
        # (rung, cut-off, trials, the trial's value judged) of a stop
        self.last: tuple[int, float, int, float] | None = None

    def _sign(self) -> float:
        return 1.0 if self.goal == "minimize" else -1.0

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        # W&B's history is a 0-based list: band b is the trial's (b + 1)-th evaluation,
        # and the bands that apply are those with b < evaluations so far.
        seen = max(trial.intermediate_values, default=0)
        reached = [band for band in self.rungs if band < seen]
        if not reached:
            return False
        rung = reached[-1]
        sign = self._sign()
        at_rung = sorted(
            _minimised(t.intermediate_values[rung + 1], sign)
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            and rung + 1 in t.intermediate_values
        )
        cutoff = at_rung[int(len(at_rung) / self.eta)] if at_rung else math.inf
        if self.strict:  # the trial as it stands at the band, like every other one there
            judged = _minimised(trial.intermediate_values[rung + 1], sign)
        else:  # the trial at its best so far
            judged = min(_minimised(v, sign) for v in trial.intermediate_values.values())
        if judged > cutoff:
            self.last = (rung, sign * cutoff, len(at_rung), sign * judged)
            return True
        return False


def _minimised(value: float, sign: float) -> float:
    return sign * value if math.isfinite(value) else math.inf


class HyperbandPruner(TrialPruner):
    name = "hyperband"

    def __init__(self, spec: HyperbandStop) -> None:
        self._spec = spec
        self._rungs = hyperband_rungs(spec)

    def prune(self, d: Decision) -> str | None:
        spec = self._spec
        pruner = _WandbHyperband(self._rungs, spec.reduction_factor, d.goal, spec.strict)
        pruned, _ = _decide(d, pruner)
        if not pruned or pruner.last is None:
            return None
        rung_at, cutoff, n, judged = pruner.last
        rung = self._rungs.index(rung_at)
        what = f"{d.metric} at that band" if spec.strict else f"best {d.metric} so far"
        return (
            f"{self._head(d, rung)}: {what} {judged:.4g} is worse "
            f"than {cutoff:.4g}, the cut-off for the best 1/{spec.reduction_factor:g} "
            f"of {n} trials at band {rung_at} (their evaluation {rung_at + 1})"
        )


def pruner_for(spec: EarlyStop) -> TrialPruner:
    if isinstance(spec, AshaStop):
        return AshaPruner(spec)
    if isinstance(spec, MedianStop):
        return MedianRulePruner(spec)
    return HyperbandPruner(spec)
