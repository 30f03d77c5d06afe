"""An httpx transport playing an lrlab server for one run, whose metric route can be made to
fail: to test what the run's buffer does while the real thing is away."""

from __future__ import annotations

import base64
import json
import math
import struct
import threading
import time
from typing import Any

import httpx

RUN = {
    "id": 1,
    "sweep_id": 1,
    "project_id": 1,
    "name": "fake",
    "status": "running",
    "config": {},
    "tags": [],
    "metric": {"name": "val_loss", "goal": "minimize"},
    "last_step": None,
    "cancel_requested": False,
    "created_at": "2026-01-01T00:00:00Z",
    "started_at": "2026-01-01T00:00:00Z",
    "finished_at": None,
}
ANALYSIS = {"trial_id": 1, "status": "succeeded", "provisional": False, "kinds": ["healthy"]}


class FakeRunServer(httpx.BaseTransport):
    """`metrics_status` is what POST /trials/1/metrics answers (200 stores the points);
    `stored` holds (name, step) -> value of every point taken, `batches` their sizes."""

    def __init__(self) -> None:
        self.metrics_status = 200
        self.stored: dict[tuple[str, int], Any] = {}
        self.batches: list[int] = []
        self.attempts = 0
        self.failed = threading.Event()  # set once a metric batch has been refused
        self.max_points: int | None = None  # over it: 413
        self.refuse_name: str | None = None  # a batch with it: 422
        self.latency = 0.0  # seconds each metric request takes
        self.rows_only = False  # a server that predates columns: "series" is a 422
        self.json_columns_only = False  # one that predates values_f64 and times_f64
        # "points", "series" (JSON lists) or "packed" (values_f64): the forms of each batch
        self.forms: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/runs":
            return httpx.Response(201, json=RUN)
        if path == "/runs/1/finish":
            return httpx.Response(200, json=ANALYSIS)
        assert path == "/trials/1/metrics", path
        self.attempts += 1
        time.sleep(self.latency)  # a network round trip and the server's work
        body = json.loads(request.content)
        if self.rows_only and "series" in body:
            detail = [{"field": "series", "message": "not permitted", "type": "extra_forbidden"}]
            return httpx.Response(422, json={"detail": detail})
        if self.json_columns_only and any(PACKED & set(s) for s in body.get("series", [])):
            return httpx.Response(422, json={"detail": _before_packed(body["series"])})
        points = points_of(body)
        status = self.metrics_status
        if self.max_points is not None and len(points) > self.max_points:
            status = 413
        if self.refuse_name and any(p["name"] == self.refuse_name for p in points):
            status = 422
        if status != 200:
            self.failed.set()
            detail = [{"field": "points", "message": f"refused ({status})", "type": "x"}]
            return httpx.Response(status, json={"detail": detail})
        for p in points:
            self.stored[(p["name"], p["step"])] = p["value"]
        self.batches.append(len(points))
        self.forms.extend(form for form in ("points", "series") if form in body)
        if any("values_f64" in s for s in body.get("series", [])):
            self.forms[-1] = "packed"
        return httpx.Response(200, json={"accepted": len(points)})


PACKED = {"values_f64", "times_f64"}
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _before_packed(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a server with JSON columns only answers to packed ones (its pydantic errors)."""
    detail = []
    for i, s in enumerate(series):
        if "values" not in s:
            detail.append({"field": f"series[{i}].values", "message": "required"})
            detail[-1]["type"] = "missing"
        detail.extend(
            {"field": f"series[{i}].{key}", "message": "not permitted", "type": "extra_forbidden"}
            for key in sorted(PACKED & set(s))
        )
    return detail


def unpack(column: str) -> list[Any]:
    """A values_f64/times_f64 column: little-endian float64s, whatever the host's order; the
    non-finite ones as the strings the server stores and reads back ("NaN", "Infinity")."""
    raw = base64.b64decode(column, validate=True)
    assert len(raw) % 8 == 0, column
    numbers = struct.unpack(f"<{len(raw) // 8}d", raw)
    return ["NaN" if math.isnan(x) else NON_FINITE.get(x, x) for x in numbers]


def points_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The points of a metric batch, rows and columns alike, checked as the server would."""
    assert set(body) <= {"points", "series"} and body, body
    points = list(body.get("points", []))
    for s in body.get("series", []):
        assert ("values" in s) != ("values_f64" in s), s
        assert not ("times" in s and "times_f64" in s), s
        steps = s["steps"]
        values = unpack(s["values_f64"]) if "values_f64" in s else s["values"]
        times = unpack(s["times_f64"]) if "times_f64" in s else s.get("times")
        assert len(values) == len(steps) and (times is None or len(times) == len(steps)), s
        for i, step in enumerate(steps):
            points.append({"name": s["name"], "step": step, "value": values[i]})
            if times is not None:
                points[-1]["time"] = times[i]
    return points
