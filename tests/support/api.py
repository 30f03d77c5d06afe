"""Request bodies and response checks shared by the API tests (and the SDK's, which send
the same specs through a real server)."""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient

TASK = {"name": "digits"}


def job(**overrides: Any) -> dict[str, Any]:
    """A valid trial spec (the body of POST /jobs) with top-level overrides."""
    return {"task": TASK, **overrides}


def sweep(**overrides: Any) -> dict[str, Any]:
    """A valid sweep spec (the body of POST /sweeps) with top-level overrides."""
    return {"base": job(), **overrides}


def lr_grid_sweep(lrs: tuple[float, ...] = (0.01, 0.1), **overrides: Any) -> dict[str, Any]:
    """A grid sweep over the optimizer's lr: one queued trial per lr."""
    return {
        "name": "sdk-sweep",
        "base": job(optimizer={"name": "sgd", "lr": 0.1}),
        "space": {"optimizer.lr": {"values": list(lrs)}},
        **overrides,
    }


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def trials_of(client: TestClient, sweep_id: int, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/sweeps/{sweep_id}/trials", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def sweep_total(client: TestClient) -> int:
    total: int = client.get("/sweeps").json()["total"]
    return total


def assert_invalid(response: Any, field: str, message: str, status: int = 422) -> None:
    """One error names exactly `field`, and its message contains `message`."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    matching = [e for e in detail if e["field"] == field]
    assert matching, f"no error at field {field!r}: {detail}"
    assert any(message in e["message"] for e in matching), detail
    assert all(e["type"] for e in detail)


def error_fields(response: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json()["detail"]}


def start(client: TestClient, **body: Any) -> dict[str, Any]:
    """Start an external run (POST /runs) named laptop-run unless `body` names it."""
    response = client.post("/runs", json={"name": "laptop-run", **body})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def log(client: TestClient, run_id: int, name: str, values: list[float], first: int = 0) -> None:
    """Log `values` of metric `name` at steps first, first + 1, ... (non-finite as text)."""
    points = [
        {"name": name, "step": first + i, "value": v if math.isfinite(v) else str(v).title()}
        for i, v in enumerate(values)
    ]
    response = client.post(f"/trials/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
