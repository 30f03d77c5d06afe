"""End to end on the session's Ray: trials whose training raises (every checkpoint write
fails, as on a full or read-only disk) stop their sweep after five, with the worker's
error in its reason; the rest of the grid never runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.domain.records import SweepStatus, TrialStatus
from services.scheduling.scheduler import Scheduler
from services.store import Store
from tests.support.sweeps import drive, submit, trials

pytestmark = pytest.mark.usefixtures("ray_local")


def test_a_sweep_whose_trials_raise_stops_itself(
    store: Store, ray_scheduler: Scheduler, tmp_path: Path
) -> None:
    # The scheduler's checkpoint root (tmp_path/checkpoints) is a file: no trial can save.
    (tmp_path / "checkpoints").write_text("not a directory")
    base = {"task": "digits", "budget": {"max_steps": 3}, "eval_every": 3, "checkpoint_every": 1}
    sweep_id = submit(store, base, {"seed": list(range(12))}, concurrent=2)
    project = store.projects.get_by_name("p")
    assert project is not None

    def stopped_and_settled() -> bool:
        sweep = store.sweeps.get(project.id, sweep_id)
        return sweep.status.is_terminal and all(
            t.status.is_terminal for t in trials(store, sweep_id)
        )

    drive(ray_scheduler, stopped_and_settled)
    sweep = store.sweeps.get(project.id, sweep_id)
    assert sweep.status is SweepStatus.FAILED
    assert sweep.status_reason is not None
    # Two run at once: both may have ended in the pass that stopped the sweep.
    assert re.match(r"stopped: the first [56] trials all failed; last error: ", sweep.status_reason)
    assert "Error" in sweep.status_reason and "checkpoint" in sweep.status_reason
    failed = [t for t in trials(store, sweep_id) if t.status is TrialStatus.FAILED]
    # Two ran at once: the one beside the fifth failure may have ended failed too.
    assert 5 <= len(failed) <= 6
    assert sweep.trial_counts["cancelled"] == 12 - len(failed)
