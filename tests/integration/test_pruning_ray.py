"""Early stopping through real trials: an ASHA sweep on digits trained on Ray, where the
bad-lr trials stop at the first rung, pruned, with the reason recorded."""

from __future__ import annotations

import pytest

from services.domain.records import TrialStatus
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps.submit import submit_sweep
from tests.support.sweeps import DIGITS, all_done, drive, trials

pytestmark = pytest.mark.usefixtures("ray_local")


def test_an_asha_sweep_prunes_its_bad_lrs_at_the_first_rung(
    store: Store,
    ray_scheduler: Scheduler,
) -> None:
    project = store.projects.create("p")
    spec = SweepSpec.model_validate(
        {
            "base": {**DIGITS, "budget": {"max_steps": 60}},
            # One at a time, the good lr first: then each bad one meets it at rung 0.
            "space": {"optimizer.lr": [0.1, 1e-5, 2e-5]},
            "max_concurrent": 1,
            "early_stop": {"pruner": "asha", "min_resource": 1, "reduction_factor": 3},
        }
    )
    sweep_id = submit_sweep(store, Settings(), project.id, spec).id
    drive(ray_scheduler, all_done(store, sweep_id))
    good, *bad = trials(store, sweep_id)
    assert good.status is TrialStatus.SUCCEEDED and good.last_step == 59
    for trial in bad:
        assert trial.status is TrialStatus.PRUNED
        assert trial.stop_reason is not None
        assert trial.stop_reason.startswith(
            "pruned by asha at step 9 (rung 0, evaluation 1): val_loss "
        ), trial.stop_reason
        # Stopped before its next step: the evaluation it was judged at is its last.
        assert trial.last_step == 9
        (val,) = store.metrics.read(trial.project_id, trial.id, ["val_loss"])
        assert val.steps == [9]
