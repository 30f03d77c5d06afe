"""metric.target through the scheduler with the fake launcher: metric points stored
directly, trials ended by hand, and the sweep finishing once an ended trial reaches the
target, with its reason, its queued trials cancelled and no new ones made."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.domain.records import Sweep, SweepStatus, Trial, TrialStatus
from services.scheduling.launcher import RunOutcome
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps.submit import submit_sweep
from tests.integration.fakes import FakeLauncher

S, R, Q, C = (
    TrialStatus.SUCCEEDED,
    TrialStatus.RUNNING,
    TrialStatus.QUEUED,
    TrialStatus.CANCELLED,
)


class Sweeping:
    """One sweep, a scheduler over the fake launcher, and helpers to end its trials."""

    def __init__(self, store: Store, tmp_path: Path, **spec: Any) -> None:
        self.store = store
        project = store.projects.create("p")
        sweep_spec = SweepSpec.model_validate({"base": {"task": "digits"}, **spec})
        self.sweep = submit_sweep(store, Settings(), project.id, sweep_spec)
        self.launcher = FakeLauncher(cpus=8)
        self.scheduler = Scheduler(
            store, self.launcher, database_url=store.db.url, checkpoint_root=tmp_path
        )
        self.scheduler.tick()

    def trials(self) -> list[Trial]:
        items = self.store.trials.list(self.sweep.project_id, self.sweep.id, limit=100, offset=0)
        return items.items

    def statuses(self) -> Counter[TrialStatus]:
        return Counter(t.status for t in self.trials())

    def now(self) -> Sweep:
        return self.store.sweeps.get(self.sweep.project_id, self.sweep.id)

    def end(
        self, number: int, values: list[float], outcome: RunOutcome = RunOutcome.SUCCEEDED
    ) -> None:
        """Trial `number` logs `values` of val_loss (one every 10 steps), then ends."""
        trial = next(t for t in self.trials() if t.number == number)
        points = [("val_loss", 10 * k + 9, v, None) for k, v in enumerate(values)]
        self.store.metrics.write(trial.project_id, trial.id, points)
        self.launcher.end(trial.id, outcome)
        self.scheduler.tick()


def grid(target: float, goal: str = "minimize") -> dict[str, Any]:
    return {
        "space": {"seed": [0, 1, 2, 3, 4, 5]},
        "max_concurrent": 2,
        "metric": {"name": "val_loss", "goal": goal, "target": target},
    }


def test_a_trial_ending_at_the_target_ends_the_sweep(store: Store, tmp_path: Path) -> None:
    run = Sweeping(store, tmp_path, **grid(0.5))
    assert run.statuses() == {R: 2, Q: 4}
    run.end(0, [0.9, 0.7])  # above the target: the sweep goes on and trial 2 starts
    assert run.now().status is SweepStatus.RUNNING and run.statuses() == {S: 1, R: 2, Q: 3}

    run.end(1, [0.8, 0.45])
    sweep = run.now()
    assert sweep.status is SweepStatus.FINISHED and sweep.finished_at is not None
    reason = "target reached: trial 1 ended with val_loss 0.45 <= the target 0.5"
    assert sweep.status_reason == reason
    # Queued trials are cancelled with the reason; the running one goes on to its end.
    assert run.statuses() == {S: 2, R: 1, C: 3}
    cancelled = [t for t in run.trials() if t.status is C]
    assert {t.stop_reason for t in cancelled} == {reason}
    run.scheduler.tick()
    assert len(run.launcher.in_flight) == 1  # nothing new is launched
    running = next(t for t in run.trials() if t.status is R)
    run.end(running.number, [0.3])  # a later, better trial changes nothing
    assert run.statuses() == {S: 3, C: 3}
    assert (run.now().status, run.now().status_reason) == (SweepStatus.FINISHED, reason)


def test_maximize_counts_at_or_above_and_lazy_sweeps_ask_no_more(
    store: Store, tmp_path: Path
) -> None:
    run = Sweeping(
        store,
        tmp_path,
        method="random",
        space={"optimizer.lr": {"distribution": "log_uniform", "low": 1e-3, "high": 1.0}},
        max_trials=20,
        max_concurrent=2,
        metric={"name": "val_loss", "goal": "maximize", "target": 0.9},
    )
    run.end(0, [0.5, 0.89])
    assert run.now().status is SweepStatus.RUNNING and len(run.trials()) == 3
    run.end(1, [0.95, 0.9])  # exactly at the target
    assert run.now().status is SweepStatus.FINISHED
    for _ in range(3):
        run.scheduler.tick()
    assert len(run.trials()) == 3  # no trial is asked for a finished sweep
    assert "val_loss 0.9 >= the target 0.9" in str(run.now().status_reason)


@pytest.mark.parametrize(
    ("values", "outcome", "ends"),
    [
        # Ranked by the last evaluated value: a best of 0.3 that ended on 0.6 is not there.
        pytest.param([0.3, 0.6], RunOutcome.SUCCEEDED, False, id="last-value-counts"),
        pytest.param([0.9, 0.4], RunOutcome.FAILED, False, id="failed-trials-do-not"),
        pytest.param([0.9, 0.4], RunOutcome.DIVERGED, True, id="pruned-trials-do"),
        pytest.param([0.9, float("nan")], RunOutcome.SUCCEEDED, False, id="nan-never"),
        pytest.param([], RunOutcome.SUCCEEDED, False, id="no-evaluation"),
    ],
)
def test_which_ended_trials_count(
    store: Store, tmp_path: Path, values: list[float], outcome: RunOutcome, ends: bool
) -> None:
    run = Sweeping(store, tmp_path, **grid(0.5))
    run.end(0, values, outcome)
    assert (run.now().status is SweepStatus.FINISHED) is ends
    assert (run.now().status_reason is not None) is ends


def test_a_running_trial_at_the_target_does_not_end_it(store: Store, tmp_path: Path) -> None:
    run = Sweeping(store, tmp_path, **grid(0.5))
    trial = run.trials()[0]
    store.metrics.write(trial.project_id, trial.id, [("val_loss", 9, 0.1, None)])
    run.scheduler.tick()
    assert run.now().status is SweepStatus.RUNNING and run.now().status_reason is None


def test_without_a_target_a_sweep_runs_out_its_trials(store: Store, tmp_path: Path) -> None:
    run = Sweeping(store, tmp_path, space={"seed": [0, 1]})
    run.end(0, [0.0])
    run.end(1, [0.0])
    assert run.now().status is SweepStatus.FINISHED and run.now().status_reason is None


def test_a_cancelled_sweep_is_not_finished_by_a_late_trial(store: Store, tmp_path: Path) -> None:
    run = Sweeping(store, tmp_path, **grid(0.5))
    store.sweeps.cancel(run.sweep.project_id, run.sweep.id)
    run.end(0, [0.1])
    assert run.now().status is SweepStatus.CANCELLED and run.now().status_reason is None
