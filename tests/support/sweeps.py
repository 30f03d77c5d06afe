"""Sweeps trained for real: submit one to project "p", read its trials and series, and
tick a scheduler until a condition holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.domain.records import Trial
from services.scheduling.housekeeping import Housekeeping
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps.submit import submit_sweep
from tests.support.waiting import wait_until

# A short digits trial: 40 steps, evaluated every 10, checkpointed every 20.
DIGITS = {"task": "digits", "budget": {"max_steps": 40}, "eval_every": 10, "checkpoint_every": 20}


def drive(
    sched: Scheduler,
    done: Callable[[], bool],
    timeout: float = 120.0,
    housekeeping: Housekeeping | None = None,
) -> None:
    """Tick the scheduler (and the housekeeping, if given) until `done()` holds (a
    condition, bounded in time)."""

    def ticked() -> bool:
        if done():
            return True
        sched.tick()
        if housekeeping is not None:
            housekeeping.tick()
        return False

    wait_until(ticked, "the condition the scheduler was driven towards", timeout)


def submit(
    store: Store, base: dict[str, Any], space: dict[str, Any] | None = None, concurrent: int = 2
) -> int:
    project = store.projects.get_by_name("p") or store.projects.create("p")
    spec = SweepSpec.model_validate(
        {"base": base, "space": space or {}, "max_concurrent": concurrent}
    )
    return submit_sweep(store, Settings(), project.id, spec).id


def trials(store: Store, sweep_id: int) -> list[Trial]:
    project = store.projects.get_by_name("p")
    assert project is not None
    return store.trials.list(project.id, sweep_id, limit=100, offset=0).items


def all_done(store: Store, sweep_id: int) -> Callable[[], bool]:
    return lambda: all(t.status.is_terminal for t in trials(store, sweep_id))


def series(store: Store, trial: Trial, name: str) -> tuple[list[int], list[float]]:
    (s,) = store.metrics.read(trial.project_id, trial.id, [name])
    return s.steps, s.values
