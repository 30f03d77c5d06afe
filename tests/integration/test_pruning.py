"""Early stopping in the store: metric points stored directly, the worker's decision
(`services.sweeps.trial_pruning`) driven by hand, and the trial ending pruned with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.domain.records import Trial, TrialStatus
from services.scheduling.launcher import RunOutcome
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps.submit import submit_sweep
from services.sweeps.trial_pruning import pruning_for
from tests.integration.fakes import FakeLauncher

OTHERS = {0: (1.0, 0.8, 0.6), 1: (0.9, 0.7, 0.5), 2: (1.1, 0.9)}  # trial number -> values


def sweep_of(
    store: Store, early_stop: dict[str, Any] | None, tmp_path: Path
) -> tuple[list[Trial], Any]:
    """A 4-trial grid: trials 0 and 1 succeeded, 2 and 3 running, OTHERS' values stored
    at steps 9, 19, 29 (one evaluation every 10 steps)."""
    project = store.projects.create("p")
    spec = SweepSpec.model_validate(
        {
            "base": {"task": "digits"},
            "space": {"seed": [0, 1, 2, 3]},
            "early_stop": early_stop,
        }
    )
    sweep = submit_sweep(store, Settings(), project.id, spec)
    launcher = FakeLauncher(cpus=8)
    scheduler = Scheduler(store, launcher, database_url=store.db.url, checkpoint_root=tmp_path)
    scheduler.tick()
    trials = store.trials.list(project.id, sweep.id, limit=10, offset=0).items
    for trial in trials:
        values = OTHERS.get(trial.number, ())
        store.metrics.write(
            trial.project_id,
            trial.id,
            [("val_loss", 10 * k + 9, v, None) for k, v in enumerate(values)],
        )
    for trial in trials[:2]:
        launcher.end(trial.id, RunOutcome.SUCCEEDED)
    scheduler.tick()
    return trials, (scheduler, launcher)


CASES = [
    pytest.param(
        {"pruner": "asha", "min_resource": 1, "reduction_factor": 2},
        [1.5],
        "pruned by asha at step 9 (rung 0, evaluation 1): val_loss 1.5 not in the top 1/2 "
        "of 4 trials at that rung",
        id="asha",
    ),
    pytest.param(
        {"pruner": "median", "n_startup_trials": 2},
        [1.5],
        "pruned by median at step 9 (evaluation 1): best val_loss so far 1.5 is worse than "
        "the median 0.95 of 2 finished trials at that evaluation",
        id="median",
    ),
    pytest.param(
        {"pruner": "hyperband", "min_resource": 1, "reduction_factor": 2},
        [1.5, 1.4],
        "pruned by hyperband at step 19 (rung 0, evaluation 2): best val_loss so far 1.4 is "
        "worse than 0.9, the cut-off for the best 1/2 of 4 trials at band 1 (their "
        "evaluation 2)",
        id="hyperband",
    ),
]


@pytest.mark.parametrize(("early_stop", "values", "reason"), CASES)
def test_each_pruner_stops_a_bad_trial_which_ends_pruned_with_the_reason(
    store: Store, tmp_path: Path, early_stop: dict[str, Any], values: list[float], reason: str
) -> None:
    trials, (scheduler, launcher) = sweep_of(store, early_stop, tmp_path)
    bad = trials[3]
    pruning = pruning_for(store, bad.id, bad.attempt)
    assert pruning is not None
    answers = [pruning(10 * k + 9, {"val_loss": v}) for k, v in enumerate(values)]
    # Only the last evaluation decides; the earlier ones are not even stored yet (the
    # worker's own values count from memory, as its sink may still hold them).
    assert answers[:-1] == [None] * (len(values) - 1)
    assert answers[-1] == reason
    asked = store.trials.get(bad.project_id, bad.id)
    assert asked.cancel_requested and asked.stop_status is TrialStatus.PRUNED
    # The worker sees the flag and reports itself cancelled: recorded as pruned.
    launcher.end(bad.id, RunOutcome.CANCELLED, detail=reason)
    scheduler.tick()
    ended = store.trials.get(bad.project_id, bad.id)
    assert (ended.status, ended.stop_reason) == (TrialStatus.PRUNED, reason)


@pytest.mark.parametrize(("early_stop", "values", "reason"), CASES)
def test_a_good_trial_goes_on(
    store: Store, tmp_path: Path, early_stop: dict[str, Any], values: list[float], reason: str
) -> None:
    trials, _ = sweep_of(store, early_stop, tmp_path)
    good = trials[3]
    pruning = pruning_for(store, good.id, good.attempt)
    assert pruning is not None
    assert [pruning(10 * k + 9, {"val_loss": 0.4}) for k in range(len(values))] == [None] * len(
        values
    )
    # Another metric than the sweep's says nothing.
    assert pruning(99, {"val_accuracy": 0.0}) is None
    assert not store.trials.get(good.project_id, good.id).cancel_requested


def test_no_early_stop_no_pruning(store: Store, tmp_path: Path) -> None:
    trials, _ = sweep_of(store, None, tmp_path)
    assert pruning_for(store, trials[3].id, 0) is None


def test_a_store_that_fails_a_decision_lets_the_trial_go_on(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asha = {"pruner": "asha", "min_resource": 1, "reduction_factor": 2}
    trials, _ = sweep_of(store, asha, tmp_path)
    pruning = pruning_for(store, trials[3].id, 0)
    assert pruning is not None

    def away(*args: object) -> None:
        raise ConnectionError("the database is away")

    monkeypatch.setattr(store.search, "series", away)
    assert pruning(9, {"val_loss": 99.0}) is None


def test_only_the_early_stop_part_of_a_stored_spec_is_read(store: Store) -> None:
    from services.domain.submissions import NewSweep, NewTrial

    project = store.projects.create("old")

    def trial_with(spec: dict[str, Any]) -> int:
        sweep = store.sweeps.create(
            project.id,
            NewSweep("s", "grid", spec, "val_loss", "minimize", None, 1),
            [NewTrial(params={}, spec={}, max_restarts=0)],
        )
        (trial,) = store.trials.list(project.id, sweep.id, limit=1, offset=0).items
        return trial.id

    # A spec some older version stored, which no longer validates whole: still pruned.
    asha = {"pruner": "asha", "min_resource": 1, "reduction_factor": 2}
    assert pruning_for(store, trial_with({"early_stop": asha, "retired": 1}), 0) is not None
    # An early_stop this version cannot read: the trial trains without one.
    assert pruning_for(store, trial_with({"early_stop": {"pruner": "gone"}}), 0) is None
