"""GET /sweeps/{id}/analysis over stored trials: shape, caching, scoping, provisional."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.domain.records import TrialStatus
from services.store import Store

LRS = [1e-3, 1e-2, 1e-1, 1.0]
STEPS = 600
EVAL_EVERY = 20


def create_sweep(client: TestClient, lrs: list[float]) -> tuple[int, dict[float, int]]:
    body = {
        "name": "lr",
        "base": {"task": "digits", "optimizer": {"name": "sgd", "lr": 0.01}, "batch_size": 64},
        "space": {"optimizer.lr": lrs},
    }
    r = client.post("/sweeps", json=body)
    assert r.status_code == 201, r.text
    sweep_id = int(r.json()["id"])
    items = client.get(f"/sweeps/{sweep_id}/trials").json()["items"]
    return sweep_id, {t["params"]["optimizer.lr"]: t["id"] for t in items}


def json_number(v: float) -> float | str:
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def log_curves(client: TestClient, trial: int, lr: float) -> None:
    """A converging run whose floor depends on the lr (best at 1e-2); lr 1 blows up."""
    floor = {1e-3: 0.6, 1e-2: 0.05, 1e-1: 0.2}.get(lr, 0.2)
    train = [2.3 * math.exp(-s / 80) + floor for s in range(STEPS)]
    if lr >= 1.0:
        train = train[:300] + [train[299] * math.exp((s - 299) / 15) for s in range(300, 420)]
        train.append(math.inf)
    points: list[dict[str, Any]] = []
    for s, v in enumerate(train):
        points.append({"name": "train_loss", "step": s, "value": json_number(v)})
        points.append({"name": "lr", "step": s, "value": lr})
        if s % EVAL_EVERY == EVAL_EVERY - 1 or s == len(train) - 1:
            points.append({"name": "val_loss", "step": s, "value": json_number(v * 1.05)})
    r = client.post(f"/trials/{trial}/metrics", json={"points": points})
    assert r.status_code == 200, r.text


def run_to_end(store: Store, trials: dict[float, int], status: TrialStatus) -> None:
    """Claim each queued trial and end it, as the scheduler would."""
    for _ in trials:
        t = store.trial_states.claim_next("test", lambda _: True)
        assert t is not None
        assert store.trial_states.finish(t.id, t.attempt, status)


def test_a_finished_sweep_names_the_best_lr_and_where_it_diverges(
    client: TestClient, store: Store
) -> None:
    sweep_id, trials = create_sweep(client, LRS)
    for lr, trial in trials.items():
        log_curves(client, trial, lr)
    run_to_end(store, trials, TrialStatus.SUCCEEDED)

    r = client.get(f"/sweeps/{sweep_id}/analysis")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sweep_id"] == sweep_id and body["provisional"] is False
    assert body["metric"] == {"name": "val_loss", "goal": "minimize"}
    assert body["trials"]["total"] == 4 and body["trials"]["succeeded"] == 4
    best = body["best"]
    assert best["trial_id"] == trials[1e-2] and best["lr"] == 1e-2
    assert best["optimizer"] == "sgd" and best["batch_size"] == 64
    assert best["final"] == pytest.approx(0.05 * 1.05, rel=0.05)
    (group,) = body["sensitivity"]
    assert [p["lr"] for p in group["points"]] == LRS
    diverged = group["points"][-1]
    assert diverged["outcome"] == "diverged" and diverged["final"] == "Infinity"
    assert group["stable_range"]["high"] == 1.0
    assert body["finding_counts"]["divergence"] >= 1
    assert body["batch_scaling"][0]["note"].startswith("not enough batch sizes")
    assert "lr 1e-2 with sgd" in body["summary"] and "lrs >= 1 diverge" in body["summary"]
    assert body["diagnoses"] == {"cached": 0, "computed": 4}

    # Every finished trial's diagnosis was saved: the next request reads them all back.
    again = client.get(f"/sweeps/{sweep_id}/analysis").json()
    assert again["diagnoses"] == {"cached": 4, "computed": 0}
    assert again["summary"] == body["summary"]


def test_a_running_sweep_gets_a_provisional_analysis(client: TestClient, store: Store) -> None:
    sweep_id, trials = create_sweep(client, [1e-2, 1e-1])
    running = store.trial_states.claim_next("test", lambda _: True)
    assert running is not None
    lr = next(lr for lr, t in trials.items() if t == running.id)
    log_curves(client, running.id, lr)

    body = client.get(f"/sweeps/{sweep_id}/analysis").json()
    assert body["provisional"] is True and body["status"] == "running"
    assert body["trials"] == {"total": 2, "with_data": 1, "queued": 1, "running": 1}
    assert body["best"]["trial_id"] == running.id and body["best"]["provisional"] is True
    assert "this analysis is provisional" in body["summary"]
    assert body["diagnoses"] == {"cached": 0, "computed": 1}
    # A running trial's provisional diagnosis is the live analyzer's to store, not ours.
    cached = store.analyses.get(running.project_id, running.id)
    assert cached is not None and cached.analysis is None


def test_a_sweep_with_nothing_logged(client: TestClient) -> None:
    sweep_id, _ = create_sweep(client, [1e-2])
    body = client.get(f"/sweeps/{sweep_id}/analysis").json()
    assert body["best"] is None and body["sensitivity"] == []
    assert body["summary"].startswith("No trial has logged metrics yet")


def test_analysis_is_scoped_to_the_project(client: TestClient, other_client: TestClient) -> None:
    sweep_id, _ = create_sweep(client, [1e-2])
    r = other_client.get(f"/sweeps/{sweep_id}/analysis")
    assert r.status_code == 404 and "not found" in r.json()["detail"][0]["message"]
    assert client.get("/sweeps/999999/analysis").status_code == 404


@pytest.mark.parametrize("bad", ["0", "abc", str(2**63)])
def test_a_bad_sweep_id_is_a_422_naming_the_field(client: TestClient, bad: str) -> None:
    r = client.get(f"/sweeps/{bad}/analysis")
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "sweep_id"


def log_points(client: TestClient, trial: int, train: list[float], val: list[float]) -> None:
    points = [{"name": "train_loss", "step": s, "value": v} for s, v in enumerate(train)]
    every = len(train) // len(val)
    points += [
        {"name": "val_loss", "step": (i + 1) * every - 1, "value": v} for i, v in enumerate(val)
    ]
    r = client.post(f"/trials/{trial}/metrics", json={"points": points})
    assert r.status_code == 200, r.text


def test_lrs_that_blew_up_with_finite_losses_bound_the_stable_range(
    client: TestClient, store: Store
) -> None:
    sweep_id, trials = create_sweep(client, [1e-2, 1e-1, 0.3, 1.0])
    healthy = [2.3 * math.exp(-s / 80) + 0.05 for s in range(STEPS)]
    for lr in (1e-2, 1e-1, 1.0):
        log_points(client, trials[lr], healthy, [0.9 * math.exp(-i / 5) + 0.1 for i in range(30)])
    # lr 0.3: its val_loss went 1.04 -> 26, every value finite.
    log_points(client, trials[0.3], healthy, [1.04 - 0.01 * i for i in range(20)] + [26.0] * 10)
    for _ in trials:
        t = store.trial_states.claim_next("test", lambda _: True)
        assert t is not None
        # lr 1 was stopped by the runner's blow-up stop (its stored curve looks healthy
        # here, so only the stop_reason can tell).
        status, reason = TrialStatus.SUCCEEDED, None
        if t.id == trials[1.0]:
            status = TrialStatus.PRUNED
            reason = "diverged: smoothed train_loss 51 is 22 x its best 2.3 at step 18"
        assert store.trial_states.finish(t.id, t.attempt, status, stop_reason=reason)

    body = client.get(f"/sweeps/{sweep_id}/analysis").json()
    (group,) = body["sensitivity"]
    outcomes = {p["lr"]: p["outcome"] for p in group["points"]}
    assert outcomes == {1e-2: "ok", 1e-1: "ok", 0.3: "diverged", 1.0: "diverged"}
    assert group["stable_range"]["high"] == 0.3 and group["stable_range"]["lrs"] == [1e-2, 1e-1]
    assert body["best"]["lr"] in (1e-2, 1e-1)
