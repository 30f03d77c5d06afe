"""The API wakes the background loops after each request that stores work for them (a
sweep, a job, a range test, a run, a finished run, a cancel), and not after one that
failed: the loops back off while idle, so they would otherwise see it only later."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

BASE = {"task": "digits", "budget": {"max_steps": 20}}


@pytest.fixture
def wakes(app: FastAPI) -> list[str]:
    calls: list[str] = []
    app.state.wake = lambda: calls.append("wake")
    return calls


def post(client: TestClient, path: str, status: int, body: Any = None) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def test_submitting_work_wakes_the_loops(client: TestClient, wakes: list[str]) -> None:
    sweep = post(client, "/sweeps", 201, {"base": BASE, "space": {"seed": [1, 2]}})
    assert len(wakes) == 1
    post(client, "/jobs", 201, BASE)
    assert len(wakes) == 2
    post(client, "/lr-find", 201, {"base": BASE})
    assert len(wakes) == 3
    trial = client.get(f"/sweeps/{sweep['id']}/trials").json()["items"][0]
    post(client, f"/trials/{trial['id']}/cancel", 200)
    assert len(wakes) == 4
    post(client, f"/sweeps/{sweep['id']}/cancel", 200)
    assert len(wakes) == 5


def test_a_run_wakes_the_loops_when_it_starts_and_when_it_finishes(
    client: TestClient, wakes: list[str]
) -> None:
    run = post(client, "/runs", 201, {"name": "laptop-run"})
    assert len(wakes) == 1
    post(client, f"/runs/{run['id']}/heartbeat", 200)  # no news for any loop
    assert len(wakes) == 1
    post(client, f"/runs/{run['id']}/finish", 200)
    assert len(wakes) == 2


def test_reads_and_failed_requests_wake_nothing(client: TestClient, wakes: list[str]) -> None:
    post(client, "/sweeps", 422, {"base": {"task": "no-such-task"}})
    post(client, "/sweeps/999999/cancel", 404)
    post(client, "/trials/999999/cancel", 404)
    post(client, "/runs/999999/finish", 404)
    assert client.get("/sweeps").status_code == 200
    assert wakes == []
