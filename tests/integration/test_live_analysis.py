"""The live analyzer over a real store (SQLite and PostgreSQL) with series written by the
test: cadence, provisional and final analyses, findings kept current, the stop policy.
Each test drives tick() directly; one trains on Ray and is stopped live, and the last ones
check that `lrlab serve` runs the analyzer (or not)."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from api import serving
from api.cli import main
from services.analysis.live_analyzer import LiveAnalyzer, PassResult
from services.analyzer import ANALYZER_VERSION
from services.domain.records import Trial, TrialStatus
from services.domain.trial_life import CANCELLED_BY_REQUEST
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.store.findings_repo import FindingFilter
from services.store.tables import TrialRow
from services.sweeps.submit import submit_sweep
from tests.integration.fakes import FakeClock
from tests.support.rows import cache_analysis
from tests.support.sweeps import drive

BASE = {"task": "digits", "optimizer": {"name": "sgd", "lr": 0.1}, "budget": {"max_steps": 5000}}


# -- curves (shapes checked against the analyzer: a blow-up, a val_loss turning up) --------
def healthy(steps: range, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [(2.3 * math.exp(-s / 100) + 0.02) * (1 + 0.05 * rng.gauss(0, 1)) for s in steps]


def blow_up(steps: range) -> list[float]:
    """Falls to ~0.2 by step 300, then rises 50x every 100 steps: finite, far above start."""
    return [
        2.3 * math.exp(-s / 60) + 0.2 if s < 300 else 0.2 * math.exp((s - 299) / 25) for s in steps
    ]


def overfit_val(last: int, every: int = 20, turn: int = 400) -> tuple[list[int], list[float]]:
    """val_loss falls to its minimum at `turn`, then climbs steadily."""
    rng = random.Random(1)
    steps = list(range(every - 1, last + 1, every))
    low = 0.5 + 1.8 * math.exp(-turn / 80)
    values = [
        (0.5 + 1.8 * math.exp(-s / 80) if s <= turn else low + 0.0008 * (s - turn))
        * (1 + 0.01 * rng.gauss(0, 1))
        for s in steps
    ]
    return steps, values


# -- helpers ------------------------------------------------------------------------------
def submit(
    store: Store, policy: dict[str, Any] | None = None, base: dict[str, Any] = BASE
) -> Trial:
    project = store.projects.get_by_name("p") or store.projects.create("p")
    body: dict[str, Any] = {"base": base, "space": {}}
    if policy is not None:
        body["policy"] = policy
    sweep = submit_sweep(store, Settings(), project.id, SweepSpec.model_validate(body))
    (trial,) = store.trials.list(project.id, sweep.id, limit=10, offset=0).items
    return trial


def start(store: Store, trial: Trial) -> Trial:
    claimed = store.trial_states.claim_next("test", lambda t: t.id == trial.id)
    assert claimed is not None and claimed.id == trial.id
    return claimed


def log(
    store: Store, trial: Trial, name: str, steps: Sequence[int], values: Sequence[float]
) -> None:
    store.metrics.write(
        trial.project_id, trial.id, [(name, s, v, None) for s, v in zip(steps, values, strict=True)]
    )


def train_to(store: Store, trial: Trial, curve: list[float], last: int, first: int = 0) -> None:
    """Log train_loss and lr for steps first..last and heartbeat the last one, as a worker."""
    steps = range(first, last + 1)
    log(store, trial, "train_loss", steps, curve[first : last + 1])
    log(store, trial, "lr", steps, [0.1] * len(steps))
    assert store.trial_states.heartbeat(trial.id, trial.attempt, last).alive


def now(store: Store, trial: Trial) -> Trial:
    found = store.trial_states.get(trial.id)
    assert found is not None
    return found


def kinds(store: Store, trial: Trial, **filters: Any) -> dict[str, bool]:
    """Stored findings: kind -> provisional."""
    page = store.findings.for_trial(trial.project_id, trial.id, FindingFilter(**filters))
    return {f.kind: f.provisional for f in page.items}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        analyze_min_new_steps=20,
        analyze_max_wait=30.0,
        analyze_max_points=2000,
        analyze_batch=8,
    )


@pytest.fixture
def analyzer(store: Store, settings: Settings, clock: FakeClock) -> LiveAnalyzer:
    return LiveAnalyzer(store, settings, clock=clock)


# -- cadence ------------------------------------------------------------------------------
def test_a_running_trial_is_reanalysed_only_after_enough_new_steps_or_time(
    store: Store, analyzer: LiveAnalyzer, clock: FakeClock
) -> None:
    trial = start(store, submit(store))
    curve = healthy(range(1000))
    assert analyzer.tick() == PassResult()  # nothing logged yet
    train_to(store, trial, curve, 199)
    assert analyzer.tick() == PassResult(analyzed=1)
    assert now(store, trial).analyzed_step == 199
    assert analyzer.tick() == PassResult()  # no new steps: nothing to do
    train_to(store, trial, curve, 209, first=200)
    assert analyzer.tick() == PassResult()  # 10 new steps: not enough yet
    clock.advance(31)
    assert analyzer.tick() == PassResult(analyzed=1)  # ... until it waited long enough
    train_to(store, trial, curve, 229, first=210)
    assert analyzer.tick() == PassResult(analyzed=1)  # 20 more: enough
    assert now(store, trial).analyzed_step == 229


def test_a_long_run_needs_more_new_steps_the_longer_it_is(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store))
    curve = healthy(range(4000))
    train_to(store, trial, curve, 2999)
    assert analyzer.tick() == PassResult(analyzed=1)
    train_to(store, trial, curve, 3040, first=3000)
    assert analyzer.tick() == PassResult()  # 41 new steps: under a 50th of 3000
    train_to(store, trial, curve, 3060, first=3041)
    assert analyzer.tick() == PassResult(analyzed=1)


def test_a_pass_analyses_at_most_a_batch_of_trials(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, analyze_batch=2, analyze_min_new_steps=20)
    analyzer = LiveAnalyzer(store, settings, clock=FakeClock())
    curve = healthy(range(100))
    for _ in range(3):
        train_to(store, start(store, submit(store)), curve, 99)
    assert analyzer.tick() == PassResult(analyzed=2)
    assert analyzer.tick() == PassResult(analyzed=1)
    assert analyzer.tick() == PassResult()


# -- provisional and final ------------------------------------------------------------------
def test_a_running_trial_is_provisional_and_its_end_gets_a_final_analysis(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store))
    curve = healthy(range(600))
    train_to(store, trial, curve, 599)
    analyzer.tick()
    assert kinds(store, trial) == {"healthy": True}
    cached = store.analyses.get(trial.project_id, trial.id)
    assert cached is not None and cached.analysis is not None
    assert cached.analysis["provisional"] is True and not cached.is_current

    # It ends on the very step the last pass saw: still re-analysed, as final.
    assert store.trial_states.finish(trial.id, trial.attempt, TrialStatus.SUCCEEDED, last_step=599)
    assert analyzer.tick() == PassResult(finalized=1)
    assert kinds(store, trial) == {"healthy": False}
    cached = store.analyses.get(trial.project_id, trial.id)
    assert cached is not None and cached.is_current
    assert analyzer.tick() == PassResult()  # final: never again


def ended_healthy(store: Store) -> Trial:
    """A trial that logged 300 healthy steps and succeeded, not yet analysed as ended."""
    done = start(store, submit(store))
    log(store, done, "train_loss", range(300), healthy(range(300)))
    store.trial_states.finish(done.id, done.attempt, TrialStatus.SUCCEEDED, last_step=299)
    return done


def test_ended_trials_never_analysed_get_their_final_analysis(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    done = ended_healthy(store)
    never_ran = submit(store)
    store.trials.cancel(never_ran.project_id, never_ran.id)  # nothing logged
    assert analyzer.tick() == PassResult(finalized=1)
    assert kinds(store, done) == {"healthy": False}
    assert kinds(store, never_ran) == {}


def test_ended_trials_analysed_by_other_rules_are_analysed_again(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    # After an upgrade of the rules, finished trials' findings are brought up to date in
    # the background, not only when someone asks for their analysis.
    done = ended_healthy(store)
    assert analyzer.tick() == PassResult(finalized=1)
    assert analyzer.tick() == PassResult()  # nothing left to do
    cached = store.analyses.get(done.project_id, done.id)
    assert cached is not None and cached.analysis is not None
    cache_analysis(store, done.id, 299, {**cached.analysis, "analyzer_version": "older-rules"})
    assert analyzer.tick() == PassResult(finalized=1)
    again = store.analyses.get(done.project_id, done.id)
    assert again is not None and again.analysis is not None
    assert again.analysis["analyzer_version"] == ANALYZER_VERSION
    assert kinds(store, done) == {"healthy": False}


# -- findings kept current -----------------------------------------------------------------
def test_findings_follow_the_curve_and_kinds_gone_are_deactivated(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store, {"stop_on_divergence": False}))
    curve = blow_up(range(500))
    train_to(store, trial, curve, 299)
    analyzer.tick()
    assert kinds(store, trial) == {"healthy": True}
    train_to(store, trial, curve, 420, first=300)
    assert analyzer.tick() == PassResult(analyzed=1)  # the policy is off: no stop
    assert kinds(store, trial) == {"divergence": True}
    every = kinds(store, trial, include_inactive=True)
    assert every == {"divergence": True, "healthy": True}
    (gone,) = [
        f for f in store.findings.changed_since(trial.project_id, trial_id=trial.id) if not f.active
    ]
    assert gone.kind == "healthy"
    assert not now(store, trial).cancel_requested


# -- the stop policy -----------------------------------------------------------------------
def test_divergence_stops_the_trial_by_default_and_it_ends_pruned_with_the_reason(
    store: Store, settings: Settings
) -> None:
    woken: list[bool] = []
    analyzer = LiveAnalyzer(store, settings, on_stop=lambda: woken.append(True))
    trial = start(store, submit(store))
    train_to(store, trial, blow_up(range(500)), 420)
    assert analyzer.tick() == PassResult(analyzed=1, stopped=1)
    asked = now(store, trial)
    assert asked.status is TrialStatus.RUNNING and asked.cancel_requested
    assert asked.stop_status is TrialStatus.PRUNED
    assert asked.stop_reason is not None and asked.stop_reason.startswith("diverged: train_loss")
    assert woken == [True]
    assert analyzer.tick() == PassResult()  # asked once

    # The worker sees its cancel flag and reports "cancelled": the trial ends pruned.
    status = store.trial_states.finish(
        trial.id, trial.attempt, TrialStatus.CANCELLED, stop_reason=CANCELLED_BY_REQUEST
    )
    assert status is TrialStatus.PRUNED
    ended = now(store, trial)
    assert ended.status is TrialStatus.PRUNED and ended.stop_reason == asked.stop_reason
    events = store.trials.events(trial.project_id, trial.id)
    assert (events[-1].status, events[-1].detail) == (TrialStatus.PRUNED, asked.stop_reason)


def test_a_stopped_trial_whose_worker_is_lost_ends_pruned_too(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store))
    train_to(store, trial, blow_up(range(500)), 420)
    assert analyzer.tick().stopped == 1
    status = store.trial_states.requeue_or_fail(trial.id, trial.attempt, "worker lost")
    assert status is TrialStatus.PRUNED
    assert now(store, trial).stop_reason.startswith("diverged")  # type: ignore[union-attr]


def test_a_users_cancel_wins_over_a_later_policy_stop(store: Store, analyzer: LiveAnalyzer) -> None:
    trial = start(store, submit(store))
    train_to(store, trial, blow_up(range(500)), 420)
    store.trials.cancel(trial.project_id, trial.id)
    assert analyzer.tick() == PassResult(analyzed=1)  # found, but nothing to ask
    status = store.trial_states.finish(
        trial.id, trial.attempt, TrialStatus.CANCELLED, stop_reason=CANCELLED_BY_REQUEST
    )
    assert status is TrialStatus.CANCELLED
    assert now(store, trial).stop_reason == CANCELLED_BY_REQUEST


def test_a_stop_is_fenced_on_the_running_attempt(store: Store) -> None:
    trial = start(store, submit(store))
    assert not store.trial_states.request_stop(trial.id, trial.attempt + 1, "diverged: x")
    assert not now(store, trial).cancel_requested
    store.trial_states.finish(trial.id, trial.attempt, TrialStatus.SUCCEEDED)
    assert not store.trial_states.request_stop(trial.id, trial.attempt, "diverged: x")
    assert now(store, trial).status is TrialStatus.SUCCEEDED
    with pytest.raises(ValueError):
        store.trial_states.request_stop(trial.id, trial.attempt, "x", TrialStatus.RUNNING)


def _overfit_to(store: Store, trial: Trial, last: int, first: int = 0) -> None:
    train_to(store, trial, healthy(range(1200), seed=2), last, first)
    steps, values = overfit_val(last)
    log(store, trial, "val_loss", steps, values)


def test_overfitting_does_not_stop_a_trial_unless_the_sweep_opts_in(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store))
    _overfit_to(store, trial, 800)
    analyzer.tick()
    _overfit_to(store, trial, 1000, first=801)
    assert analyzer.tick() == PassResult(analyzed=1)
    assert "overfitting" in kinds(store, trial)
    assert not now(store, trial).cancel_requested


def test_opted_in_overfitting_stops_once_a_second_pass_confirms_it(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store, {"stop_on_overfitting": True}))
    _overfit_to(store, trial, 800)
    assert analyzer.tick() == PassResult(analyzed=1)  # found once: not confirmed yet
    assert "overfitting" in kinds(store, trial)
    assert not now(store, trial).cancel_requested
    _overfit_to(store, trial, 1000, first=801)
    assert analyzer.tick() == PassResult(analyzed=1, stopped=1)
    asked = now(store, trial)
    assert asked.stop_status is TrialStatus.PRUNED
    assert asked.stop_reason is not None and asked.stop_reason.startswith("overfitting: val_loss")


def test_an_external_run_is_analysed_but_never_stopped(
    store: Store, analyzer: LiveAnalyzer
) -> None:
    trial = start(store, submit(store))
    with store.db.session() as s:  # as POST /runs stores one: no heartbeat, no last_step
        s.execute(update(TrialRow).where(TrialRow.id == trial.id).values(kind="external"))
    log(store, trial, "train_loss", range(421), blow_up(range(421)))
    assert analyzer.tick() == PassResult(analyzed=1)
    assert kinds(store, trial) == {"divergence": True}
    run = now(store, trial)
    assert run.analyzed_step == 420 and not run.cancel_requested and run.stop_status is None
    assert not store.trial_states.request_stop(trial.id, trial.attempt, "diverged: x")
    assert analyzer.tick() == PassResult()  # no new points


# -- on Ray -------------------------------------------------------------------------------
@pytest.mark.usefixtures("ray_local")
def test_a_trial_blowing_up_without_nan_is_stopped_live_and_ends_pruned(
    store: Store,
    settings: Settings,
    ray_scheduler: Scheduler,
) -> None:
    # SGD at lr 1.8 on digits: the loss climbs ~10x every 100 steps from about step 20 and
    # stays finite until step ~1800, where the worker's own non-finite check would stop it.
    trial = submit(
        store,
        base={
            "task": "digits",
            "optimizer": {"name": "sgd", "lr": 1.8},
            "budget": {"max_steps": 20_000},
            "eval_every": 100,
            "checkpoint_every": 10_000,
            "stop": None,  # the worker's own blow-up stop would end it first
        },
    )
    analyzer = LiveAnalyzer(store, settings, on_stop=ray_scheduler.wake)

    def trial_ended() -> bool:
        analyzer.tick()
        return now(store, trial).status.is_terminal

    drive(ray_scheduler, trial_ended)
    ended = now(store, trial)
    assert ended.status is TrialStatus.PRUNED
    reason = ended.stop_reason or ""
    assert reason.startswith("diverged: train_loss"), reason
    (losses,) = store.metrics.read(trial.project_id, trial.id, ["train_loss"])
    assert losses.values[-1] > 100 * losses.values[0] or not math.isfinite(losses.values[-1])
    assert losses.steps[-1] < 20_000 // 4  # long before its budget
    # Which stop wins is a race between the sink's write (every 0.5 s), the analyzer's pass,
    # the worker's heartbeat (1 s) and the worker's own NaN check at ~step 1800: on a
    # loaded machine the NaN check can come first. Either way the analyzer saw it live.
    assert "divergence" in kinds(store, trial)


# -- lrlab serve ----------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "runs"), [("--analyzer", True), ("--no-analyzer", False)])
def test_serve_runs_the_live_analyzer_unless_told_not_to(
    flag: str, runs: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[bool] = []

    def serve_nothing(*_: Any, **__: Any) -> None:
        during.append(any(t.name == "lrlab-analyzer" for t in threading.enumerate()))

    monkeypatch.setattr(serving, "serve", serve_nothing)
    args = ["serve", "--data-dir", str(tmp_path), "--no-scheduler", flag]
    result = CliRunner().invoke(main, args, env={"LRLAB_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    assert during == [runs]
    assert not any(t.name == "lrlab-analyzer" for t in threading.enumerate())  # stopped
