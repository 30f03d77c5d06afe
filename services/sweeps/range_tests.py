"""LR range tests as jobs: submit one, and read its curve and suggested lrs.

A range test is stored as a sweep of method "lr_find" holding one trial, so every trial
route (events, metrics, streams, cancel) works on it. The trial's spec holds the options
(`range_test_options` reads them back). The curve is the trial's `lr` and `train_loss`
series, read whole (a test is at most a few thousand steps) and reduced for the response;
while the trial runs, the reading is provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from services.analyzer.findings import json_value
from services.analyzer.lr_find import Suggestions, suggest_lrs
from services.domain.capacity import ClusterCapacity
from services.domain.downsample import downsample_indices
from services.domain.errors import NotFound
from services.domain.kinds import SweepMethod
from services.domain.records import Sweep, Trial
from services.domain.submissions import NewSweep, NewTrial
from services.specs import SweepSpec
from services.specs.range_test import (
    RangeTestOptions,
    RangeTestRequest,
    range_test_options,
    range_test_spec,
)
from services.specs.sweep import Policy
from services.store import Store
from services.sweeps.resource_check import check_resources

__all__ = [
    "RangeTestResult",
    "read_range_test",
    "submit_range_test",
]

# The curve is the test's signal: the live analyzer must not stop it for diverging.
_POLICY = Policy(stop_on_divergence=False, stop_on_overfitting=False)


def submit_range_test(
    store: Store,
    project_id: int,
    request: RangeTestRequest,
    capacity: ClusterCapacity | None = None,
) -> Sweep:
    """Store the range test as a queued one-trial sweep of method lr_find. Its stored spec
    is the sweep spec of a single job on the test's trial spec (where the options live),
    so whatever reads a sweep's spec reads this one too. On a fixed cluster (`capacity`),
    a test no node can run is refused, naming base.resources."""
    trial = range_test_spec(request.base, request)
    spec = SweepSpec(
        name=request.name, base=trial, method="single", max_concurrent=1, policy=_POLICY
    )
    check_resources(spec, capacity)
    return store.sweeps.create(
        project_id,
        NewSweep(
            name=request.name,
            method=SweepMethod.LR_FIND,
            spec=spec.model_dump(mode="json"),
            metric_name="train_loss",
            metric_goal="minimize",
            max_trials=1,
            max_concurrent=1,
        ),
        [NewTrial(params={}, spec=trial.model_dump(mode="json"), max_restarts=trial.max_restarts)],
    )


@dataclass(frozen=True)
class RangeTestResult:
    sweep: Sweep
    trial: Trial
    options: RangeTestOptions
    steps: list[int]  # the curve, reduced to at most max_points
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    points: int  # points in the whole curve
    reading: Suggestions  # from the whole curve

    @property
    def provisional(self) -> bool:
        return not self.trial.status.is_terminal

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep.id,
            "trial_id": self.trial.id,
            "status": self.trial.status.value,
            "provisional": self.provisional,
            "stop_reason": self.trial.stop_reason,
            "error": self.trial.error,
            "options": self.options.model_dump(mode="json"),
            "curve": {
                "points": self.points,
                "steps": self.steps,
                "lr": self.lrs,
                "loss": [json_value(v) for v in self.losses],
                "smoothed": [json_value(v) for v in self.smoothed],
            },
            **self.reading.to_dict(),
        }


def range_test_trial(store: Store, project_id: int, sweep_id: int) -> tuple[Sweep, Trial]:
    """The range test sweep and its trial; NotFound unless it is the project's lr_find."""
    sweep = store.sweeps.get(project_id, sweep_id)
    if sweep.method != SweepMethod.LR_FIND:
        raise NotFound(f"sweep {sweep_id} is not an lr range test (its method is {sweep.method})")
    trials = store.trials.list(project_id, sweep_id, limit=1, offset=0).items
    if not trials:  # created together with its sweep; only a broken store lacks it
        raise NotFound(f"range test {sweep_id} has no trial")
    return sweep, trials[0]


def read_range_test(
    store: Store, project_id: int, sweep_id: int, max_points: int = 500
) -> RangeTestResult:
    sweep, trial = range_test_trial(store, project_id, sweep_id)
    options = range_test_options(trial.trial_spec)
    by_name = {
        s.name: s
        for s in store.metrics.read(
            trial.project_id, trial.id, ["lr", "train_loss"], limit=10 * options.steps
        )
    }
    lr_of = dict(zip(by_name["lr"].steps, by_name["lr"].values, strict=True))
    steps = [step for step in by_name["train_loss"].steps if step in lr_of]
    loss_of = dict(zip(by_name["train_loss"].steps, by_name["train_loss"].values, strict=True))
    lrs = [lr_of[step] for step in steps]
    losses = [loss_of[step] for step in steps]
    reading = suggest_lrs(
        lrs,
        losses,
        smoothing=options.smoothing,
        blowup=options.loss_above_best,
        finished=trial.status.is_terminal,
    )
    keep = downsample_indices(np.asarray(losses, dtype=np.float64), max_points).tolist()
    return RangeTestResult(
        sweep=sweep,
        trial=trial,
        options=options,
        steps=[steps[i] for i in keep],
        lrs=[lrs[i] for i in keep],
        losses=[losses[i] for i in keep],
        smoothed=[reading.smoothed[i] for i in keep],
        points=len(steps),
        reading=reading,
    )
