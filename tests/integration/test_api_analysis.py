"""GET /trials/{id}/analysis: the analyzer over a trial's stored series."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient


def new_trial(client: TestClient, lr: float = 1.0) -> int:
    job = client.post(
        "/jobs", json={"task": "digits", "optimizer": {"name": "sgd", "lr": lr}}
    ).json()
    return int(client.get(f"/sweeps/{job['id']}/trials").json()["items"][0]["id"])


def send(client: TestClient, trial: int, name: str, values: list[float]) -> None:
    points = [
        {
            "name": name,
            "step": s,
            "value": v
            if math.isfinite(v)
            else str(v).replace("inf", "Infinity").replace("nan", "NaN"),
        }
        for s, v in enumerate(values)
    ]
    assert client.post(f"/trials/{trial}/metrics", json={"points": points}).status_code == 200


def test_a_diverging_curve_is_diagnosed_with_a_lower_lr(client: TestClient) -> None:
    trial = new_trial(client, lr=1.0)
    falling = [2.3 * math.exp(-s / 60) + 0.2 for s in range(300)]
    exploding = [falling[-1] * math.exp((s - 299) / 15) for s in range(300, 420)]
    send(client, trial, "train_loss", [*falling, *exploding, math.inf])
    send(client, trial, "lr", [1.0] * 421)
    body = client.get(f"/trials/{trial}/analysis").json()
    assert body["status"] == "queued" and body["provisional"] is True
    assert body["kinds"][0] == "divergence"
    finding = body["findings"][0]
    assert finding["changes"]["optimizer.lr"] < 1.0
    assert finding["evidence"]  # numbers from the series, non-finite ones as strings


def test_a_smoothly_converging_curve_is_healthy(client: TestClient) -> None:
    trial = new_trial(client, lr=0.1)
    send(client, trial, "train_loss", [2.3 * math.exp(-s / 80) + 0.05 for s in range(600)])
    send(client, trial, "lr", [0.1] * 600)
    assert client.get(f"/trials/{trial}/analysis").json()["kinds"] == ["healthy"]


def test_analysis_is_scoped_to_the_project(client: TestClient, other_client: TestClient) -> None:
    trial = new_trial(client)
    assert other_client.get(f"/trials/{trial}/analysis").status_code == 404
    assert client.get("/trials/999999/analysis").status_code == 404
