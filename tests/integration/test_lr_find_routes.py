"""POST /lr-find and GET /lr-find/{id} without workers: validation, scoping, the reading of
a stored curve (provisional while the trial runs, final once it has ended)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from services.domain.records import PointIn, TrialStatus
from services.store import Store

BASE = {"task": "digits", "optimizer": {"name": "sgd", "momentum": 0.9}, "batch_size": 32}


def start(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/lr-find", json={"base": BASE, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def errors(response: Any) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in response.json()["detail"]]


def test_a_range_test_is_queued_as_a_one_trial_lr_find_sweep(
    client: TestClient, store: Store
) -> None:
    body = start(client, min_lr=1e-6, max_lr=1.0, steps=50)
    assert body["status"] == "queued" and body["provisional"] is True
    assert body["verdict"] == "too_few_points" and body["recommended"] is None
    assert body["options"]["min_lr"] == 1e-6 and body["options"]["steps"] == 50
    sweep = client.get(f"/sweeps/{body['sweep_id']}").json()
    assert sweep["method"] == "lr_find" and sweep["trial_counts"] == {"queued": 1}
    trial = client.get(f"/trials/{body['trial_id']}").json()
    spec = trial["spec"]
    assert spec["schedule"] == {
        "name": "range_test",
        "end_lr": 1.0,
        "warmup_steps": 0,
        "warmup_fraction": None,
        "warmup_start_factor": 0.1,
    }
    assert spec["optimizer"]["lr"] == 1e-6 and spec["optimizer"]["momentum"] == 0.9
    assert spec["budget"]["max_steps"] == 50 and spec["stop"]["loss_above_best"] == 4.0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"min_lr": 1.0, "max_lr": 0.1}, "max_lr", "greater than min_lr"),
        ({"steps": 5}, "steps", "greater than or equal to 10"),
        ({"min_lr": 0}, "min_lr", "greater than 0"),
        ({"smoothing": 1}, "smoothing", "less than 1"),
        ({"loss_above_best": 1}, "loss_above_best", "greater than 1"),
        ({"ramp": "linear"}, "ramp", "unknown key 'ramp'"),
        ({"base": {"optimizer": "sgd"}}, "base.task", "Field required"),
        ({"base": {**BASE, "optimizer": {"name": "nag"}}}, "base.optimizer.name", "nag"),
    ],
)
def test_bad_requests_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/lr-find", json={"base": BASE, **body})
    assert response.status_code == 422
    found = errors(response)
    assert any(f == field and words in m for f, m in found), found


def test_other_projects_and_other_sweeps_are_not_found(
    client: TestClient, other_client: TestClient
) -> None:
    body = start(client)
    response = other_client.get(f"/lr-find/{body['sweep_id']}")
    assert response.status_code == 404
    job = client.post("/jobs", json=BASE)
    assert job.status_code == 201
    response = client.get(f"/lr-find/{job.json()['id']}")
    assert response.status_code == 404 and "not an lr range test" in response.text
    assert client.get("/lr-find/0").status_code == 422
    assert client.get(f"/lr-find/{body['sweep_id']}?max_points=2").status_code == 422


def record_curve(store: Store, project_id: int, trial_id: int, n: int, upto: int) -> None:
    """A synthetic range test's first `upto` of `n` points: a fall, then a blow-up."""
    lrs = np.geomspace(1e-6, 10.0, n)
    x = np.log10(lrs)
    losses = 2.3 - 2.0 / (1 + np.exp(-3 * (x + 2))) + np.exp(4 * x)
    points: list[PointIn] = [("lr", i, float(lrs[i]), 0.0) for i in range(upto)]
    points += [("train_loss", i, float(losses[i]), 0.0) for i in range(upto)]
    store.metrics.write(project_id, trial_id, points)


def finish(store: Store, trial_id: int, last_step: int, reason: str) -> None:
    claimed = store.trial_states.claim_next("test", lambda t: True)
    assert claimed is not None and claimed.id == trial_id
    store.trial_states.finish(
        trial_id, 0, TrialStatus.SUCCEEDED, stop_reason=reason, last_step=last_step
    )


def test_the_reading_is_provisional_while_running_and_final_after(
    client: TestClient, store: Store
) -> None:
    body = start(client, min_lr=1e-6, max_lr=10.0, steps=100, smoothing=0.0)
    sweep_id, trial_id = body["sweep_id"], body["trial_id"]
    project_id = client.get(f"/trials/{trial_id}").json()["project_id"]
    record_curve(store, project_id, trial_id, 100, 60)
    running = client.get(f"/lr-find/{sweep_id}").json()
    assert running["provisional"] is True and running["curve"]["points"] == 60
    assert running["verdict"] == "ok"  # a minimum at the end is no verdict while running
    record_curve(store, project_id, trial_id, 100, 92)
    finish(store, trial_id, 91, "range test ended: loss 9.8 > 4 x best 0.39 at lr 3.2")
    done = client.get(f"/lr-find/{sweep_id}?max_points=40").json()
    assert done["status"] == "succeeded" and done["provisional"] is False
    assert done["stop_reason"].startswith("range test ended")
    curve = done["curve"]
    assert curve["points"] == 92 and len(curve["lr"]) <= 40
    assert len(curve["lr"]) == len(curve["loss"]) == len(curve["smoothed"]) == len(curve["steps"])
    assert curve["steps"][0] == 0 and curve["steps"][-1] == 91
    assert curve["lr"] == sorted(curve["lr"])
    methods = {s["method"]: s for s in done["suggestions"]}
    assert set(methods) == {"steepest", "minimum", "valley"}
    # The fall is centred on 1e-2: steepest and valley land within a factor 3 of it.
    for name in ("steepest", "valley"):
        assert 1e-2 / 3 < methods[name]["lr"] < 3e-2, methods[name]
        assert methods[name]["reasoning"]
    assert done["recommended"]["method"] == "valley"
    bounds = done["bounds"]
    assert bounds["distribution"] == "log_uniform" and bounds["low"] < bounds["high"]
    assert math.isfinite(bounds["high"]) and "minimum" in bounds["reasoning"]
