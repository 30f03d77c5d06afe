"""`lr: auto` sweeps in the store, without workers: the range test first, then the sweep's
trials from its reading, settled once (a second pass, or a restart, changes nothing)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from services.domain.records import SweepStatus, TrialStatus
from services.scheduling.housekeeping import Housekeeping, HousekeepingResult
from services.store import Store
from services.sweeps.lazy_trials import ask_next_trial
from services.sweeps.lr_auto import settle_waiting_sweeps

BASE = {"task": "digits", "optimizer": {"name": "adam"}, "budget": {"max_steps": 20}}


def submit(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/sweeps", json={"base": BASE, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def run_range_test(store: Store, trial_id: int, *, blow_up: bool = True) -> None:
    """Record a range test's curve (a fall centred on 1e-3, then a blow-up) and end it."""
    lrs = np.geomspace(1e-7, 10.0, 100)
    x = np.log10(lrs)
    losses = 2.3 - 2.0 / (1 + np.exp(-3 * (x + 3))) + (np.exp(4 * (x + 1)) if blow_up else 0)
    claimed = store.trial_states.claim_next("test", lambda t: t.id == trial_id)
    assert claimed is not None and claimed.id == trial_id
    points = [("lr", i, float(v), 0.0) for i, v in enumerate(lrs)]
    store.metrics.write(
        claimed.project_id,
        trial_id,
        points + [("train_loss", i, float(v), 0.0) for i, v in enumerate(losses)],
    )
    store.trial_states.finish(trial_id, 0, TrialStatus.SUCCEEDED, last_step=99)


def range_test_of(client: TestClient, sweep: dict[str, Any]) -> dict[str, Any]:
    test_id = sweep["spec"]["lr_auto"]["range_test_sweep_id"]
    body = client.get(f"/lr-find/{test_id}")
    assert body.status_code == 200
    return dict(body.json())


def test_a_grid_waits_for_its_range_test_then_gets_its_lrs_once(
    client: TestClient, store: Store
) -> None:
    sweep = submit(
        client, space={"optimizer.lr": {"from": "range_test", "values": 4}, "seed": [1, 2]}
    )
    assert sweep["method"] == "grid" and sweep["trial_counts"] == {}
    test = range_test_of(client, sweep)
    assert test["status"] == "queued" and test["options"]["max_lr"] == 10.0
    # Nothing to settle while the test has not ended; the sweep is not finished either.
    assert settle_waiting_sweeps(store) == []
    assert store.trial_states.finish_sweeps() == []
    run_range_test(store, test["trial_id"])
    assert settle_waiting_sweeps(store) == [sweep["id"]]
    assert settle_waiting_sweeps(store) == []  # settled once
    settled = client.get(f"/sweeps/{sweep['id']}").json()
    assert settled["trial_counts"] == {"queued": 8}
    resolution = settled["spec"]["lr_auto"]["resolution"]
    low, high = resolution["low"], resolution["high"]
    assert 1e-5 < low < resolution["lr"] < high < 1.0 and "recommended lr" in resolution["summary"]
    lrs = settled["spec"]["space"]["optimizer.lr"]["values"]
    assert len(lrs) == 4 and lrs[0] == pytest.approx(low, rel=1e-2)
    assert lrs[-1] == pytest.approx(high, rel=1e-2)
    ratios = [b / a for a, b in itertools.pairwise(lrs)]
    assert max(ratios) / min(ratios) < 1.02  # evenly spaced in log
    trials = client.get(f"/sweeps/{sweep['id']}/trials").json()["items"]
    assert sorted({t["params"]["optimizer.lr"] for t in trials}) == lrs
    assert {t["spec"]["optimizer"]["lr"] for t in trials} == set(lrs)


def test_the_housekeeping_settles_and_wakes_the_scheduler_for_the_trials_it_queued(
    client: TestClient, store: Store
) -> None:
    settled: list[str] = []
    housekeeping = Housekeeping(store, on_settled=lambda: settled.append("wake"))
    sweep = submit(client, space={"optimizer.lr": {"from": "range_test", "values": 3}})
    assert housekeeping.tick() == HousekeepingResult() and settled == []  # test not ended
    run_range_test(store, range_test_of(client, sweep)["trial_id"])
    assert housekeeping.tick() == HousekeepingResult(sweeps_settled=1) and settled == ["wake"]
    assert housekeeping.tick() == HousekeepingResult() and settled == ["wake"]
    assert client.get(f"/sweeps/{sweep['id']}").json()["trial_counts"] == {"queued": 3}


def test_a_random_sweep_asks_in_the_settled_bounds(client: TestClient, store: Store) -> None:
    sweep = submit(client, method="random", max_trials=3, space={"optimizer.lr": "auto"})
    test = range_test_of(client, sweep)
    # Before the range test has ended the lazy search asks nothing for this sweep; the
    # range test's own trial is the only one queued.
    assert ask_next_trial(store) is None
    run_range_test(store, test["trial_id"])
    assert settle_waiting_sweeps(store) == [sweep["id"]]
    space = client.get(f"/sweeps/{sweep['id']}").json()["spec"]["space"]
    bounds = space["optimizer.lr"]
    assert bounds["distribution"] == "log_uniform" and bounds["low"] < bounds["high"]
    trial = ask_next_trial(store)
    assert trial is not None and trial.sweep_id == sweep["id"]
    assert bounds["low"] <= trial.params["optimizer.lr"] <= bounds["high"]


def test_a_range_test_that_suggests_nothing_cancels_the_sweep_with_the_reason(
    client: TestClient, store: Store
) -> None:
    sweep = submit(client, space={"optimizer.lr": "auto"})
    test = range_test_of(client, sweep)
    claimed = store.trial_states.claim_next("test", lambda t: True)
    assert claimed is not None
    store.trial_states.finish(claimed.id, 0, TrialStatus.FAILED, error="worker crashed")
    assert settle_waiting_sweeps(store) == [sweep["id"]]
    ended = client.get(f"/sweeps/{sweep['id']}").json()
    assert ended["status"] == SweepStatus.CANCELLED.value and ended["trial_counts"] == {}
    summary = ended["spec"]["lr_auto"]["resolution"]["summary"]
    assert f"trial {test['trial_id']}" in summary and "worker crashed" in summary


def test_a_finished_range_test_can_be_reused_but_only_the_projects_own(
    client: TestClient, other_client: TestClient, store: Store
) -> None:
    test = client.post("/lr-find", json={"base": BASE}).json()
    run_range_test(store, test["trial_id"])
    reuse = {"optimizer.lr": {"from": "range_test", "range_test_sweep_id": test["sweep_id"]}}
    sweep = submit(client, space=reuse)
    assert sweep["spec"]["lr_auto"]["range_test_sweep_id"] == test["sweep_id"]
    assert client.get("/sweeps").json()["total"] == 2  # no second range test
    assert settle_waiting_sweeps(store) == [sweep["id"]]
    foreign = other_client.post("/sweeps", json={"base": BASE, "space": reuse})
    assert foreign.status_code == 404
    assert foreign.json()["detail"][0]["field"] == "lr_auto.range_test_sweep_id"


def test_the_grid_limit_counts_the_lrs_to_come(client: TestClient) -> None:
    space = {"optimizer.lr": {"from": "range_test", "values": 50}, "seed": list(range(300))}
    response = client.post("/sweeps", json={"base": BASE, "space": space})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["field"] == "space" and "15000 combinations" in error["message"]


def test_a_sweep_never_blowing_up_still_settles_up_to_max_lr(
    client: TestClient, store: Store
) -> None:
    sweep = submit(client, space={"optimizer.lr": "auto"})
    test = range_test_of(client, sweep)
    run_range_test(store, test["trial_id"], blow_up=False)
    assert settle_waiting_sweeps(store) == [sweep["id"]]
    resolution = client.get(f"/sweeps/{sweep['id']}").json()["spec"]["lr_auto"]["resolution"]
    assert "raise max_lr" in resolution["summary"] and math.isclose(resolution["high"], 10.0)
