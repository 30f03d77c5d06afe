"""GET /sweeps/{id}/stream and /trials/{id}/stream: server-sent events over a real socket
(uvicorn on a free port, an httpx streaming client) and in process."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.serving import Server
from services.domain.records import TrialStatus
from services.domain.submissions import NewSweep, NewTrial
from services.settings import Settings
from services.store import Store
from tests.support.streams import Key, points
from tests.support.waiting import wait_until

NAMES = ("train_loss", "lr")


@dataclass
class Sse:
    type: str
    id: str | None
    data: Any


def parse(lines: Iterator[str]) -> Iterator[Sse | str]:
    """Events, and comment lines as plain strings (to see keep-alives)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield line
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        elif "data" in fields:
            yield Sse(fields.get("event", "message"), fields.get("id"), json.loads(fields["data"]))
            fields = {}
        else:
            fields = {}


class LiveServer:
    """The app on uvicorn (api.serving.Server) in a thread, on a free port."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = Server(app, log_level="warning")
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_until(lambda: self.server.started, "uvicorn started", 20)
        return self

    def stop(self, seconds: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(seconds)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.sock.close()
        assert not self.thread.is_alive(), "the server did not stop"

    @property
    def connections(self) -> int:
        return len(self.server.server_state.connections)


@pytest.fixture
def live_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", stream_poll_seconds=0.02, stream_keepalive_seconds=0.1
    )


def token_for(store: Store, name: str = "alpha") -> tuple[int, dict[str, str]]:
    project = store.projects.create(name)
    issued = store.projects.issue_token(project.id, "t", is_admin=True)
    return project.id, {"Authorization": f"Bearer {issued.secret}"}


def running_sweep(store: Store, project_id: int, n: int) -> tuple[int, list[int]]:
    sweep = store.sweeps.create(
        project_id,
        NewSweep("live", "grid", {}, "val_loss", "minimize", None, max_concurrent=n),
        [NewTrial(params={"i": i}, spec={"task": "digits"}, max_restarts=0) for i in range(n)],
    )
    ids = [store.trial_states.claim_next("test", lambda t: True) for _ in range(n)]
    return sweep.id, [t.id for t in ids if t is not None]


# -- over a real socket --------------------------------------------------------------------


def test_disconnect_and_resume_while_points_land_gives_each_point_once(
    store: Store, live_settings: Settings
) -> None:
    project_id, auth = token_for(store)
    sweep_id, trials = running_sweep(store, project_id, 3)
    steps, half = 200, 100
    written: list[Key] = []
    first_seen, reader_gone = threading.Event(), threading.Event()

    def write(lo: int, hi: int) -> None:
        for start in range(lo, hi, 10):  # batches of 10 steps, trials interleaved
            for trial in trials:
                rows = [(n, s, s / 7, None) for s in range(start, start + 10) for n in NAMES]
                rows += [("val_loss", s, 1.0, None) for s in range(start, start + 10, 5)]
                store.metrics.write(project_id, trial, rows)
                written.extend((trial, name, step) for name, step, _, _ in rows)

    def writer() -> None:
        write(0, half)
        first_seen.wait(30)
        write(half, half + 50)  # while the reader is still connected
        reader_gone.wait(30)
        write(half + 50, steps)  # while it is away and reconnecting
        for trial in trials:
            assert store.trial_states.finish(trial, 0, TrialStatus.SUCCEEDED)
        store.trial_states.finish_sweeps()

    thread = threading.Thread(target=writer)
    app = create_app(live_settings, store)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, headers=auth) as http:
        thread.start()
        before: list[Sse] = []
        path = f"/sweeps/{sweep_id}/stream"
        with http.stream("GET", path, timeout=httpx.Timeout(10.0)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for item in parse(response.iter_lines()):
                if isinstance(item, Sse):
                    before.append(item)
                    if item.type == "metrics":
                        first_seen.set()
                    if len(points(before)) > half * len(trials):
                        break  # hang up mid-way, with points still to come
        # The server let the stream go.
        wait_until(lambda: live.connections == 0, "no live connection left", 20)
        reader_gone.set()
        last_id = before[-1].id
        assert last_id is not None
        after: list[Sse] = []
        resume = {"Last-Event-ID": last_id}
        with http.stream("GET", path, headers=resume, timeout=httpx.Timeout(10.0)) as response:
            for item in parse(response.iter_lines()):
                if isinstance(item, Sse):
                    after.append(item)
        thread.join(30)
    assert after[-1].type == "end" and after[-1].data == {
        "sweep_id": sweep_id,
        "status": "finished",
    }
    union = points(before) + points(after)
    assert len(written) == len(set(written)) == 3 * steps * 2 + 3 * steps // 5
    assert sorted(union) == sorted(written)
    assert max(Counter(union).values()) == 1
    assert points(before) and points(after)  # both connections carried points
    ended = [
        e.data["trial_id"] for e in after if e.type == "trial" and e.data["status"] != "running"
    ]
    assert sorted(ended) == trials


def test_quiet_streams_get_keep_alives_and_end_when_the_server_stops(
    store: Store, live_settings: Settings
) -> None:
    project_id, auth = token_for(store)
    _, (trial,) = running_sweep(store, project_id, 1)
    app = create_app(live_settings, store)
    seen: list[Sse | str] = []
    live = LiveServer(app)
    with live, httpx.Client(base_url=live.url, headers=auth) as http:
        path = f"/trials/{trial}/stream"
        with http.stream("GET", path, timeout=httpx.Timeout(10.0)) as response:
            lines = parse(response.iter_lines())
            while ": keep-alive" not in seen:
                seen.append(next(lines))
            stopper = threading.Thread(target=live.stop)
            stopper.start()
            # The server ends the stream as it shuts down (or cuts the connection).
            with contextlib.suppress(httpx.RemoteProtocolError):
                seen.extend(lines)
            stopper.join(15)
        assert not live.thread.is_alive(), "an open stream kept the server from stopping"
    events = [e for e in seen if isinstance(e, Sse)]
    assert [e.type for e in events] == ["trial"] and events[0].data["status"] == "running"


# -- in process: streams that end ----------------------------------------------------------


def events_of(client: TestClient, path: str, **params: Any) -> list[Sse]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [e for e in parse(iter(response.text.splitlines())) if isinstance(e, Sse)]


def finished_run(client: TestClient, steps: int = 30) -> dict[str, Any]:
    run = client.post("/runs", json={"name": "r"}).json()
    points = [{"name": n, "step": s, "value": s * 0.5} for s in range(steps) for n in NAMES]
    assert client.post(f"/trials/{run['id']}/metrics", json={"points": points}).status_code == 200
    assert client.post(f"/runs/{run['id']}/finish").status_code == 200
    return dict(run)


def test_an_ended_run_replays_whole_then_ends(client: TestClient) -> None:
    run = finished_run(client)
    for path in (f"/sweeps/{run['sweep_id']}/stream", f"/trials/{run['id']}/stream"):
        events = events_of(client, path)
        # The final diagnosis is kept when the run finishes, so its finding is streamed too.
        assert [e.type for e in events] == ["metrics", "trial", "finding", "end"]
        assert events[2].data["trial_id"] == run["id"] and events[2].data["active"] is True
        assert all(e.id and e.id.startswith("v1") for e in events)
        assert sorted(points(events)) == sorted((run["id"], n, s) for s in range(30) for n in NAMES)
        assert events[1].data["status"] == "succeeded"
        assert events[-1].data["status"] in ("finished", "succeeded")


def test_resume_by_query_parameter_and_downsampled_events(client: TestClient) -> None:
    run = finished_run(client, steps=400)
    path = f"/trials/{run['id']}/stream"
    whole = events_of(client, path)
    rest = events_of(client, path, last_event_id=whole[0].id)
    assert [e.type for e in rest] == [e.type for e in whole[1:]] and points(rest) == []
    (small,) = [e for e in events_of(client, path, max_points=10) if e.type == "metrics"]
    assert small.data["downsampled"] is True and small.data["total"] == 800
    per_series = Counter(p["name"] for p in small.data["points"])
    assert set(per_series) == set(NAMES) and max(per_series.values()) <= 10


def test_bad_stream_requests_are_4xx_naming_the_field(
    client: TestClient, other_client: TestClient
) -> None:
    run = finished_run(client, steps=2)
    path = f"/sweeps/{run['sweep_id']}/stream"
    cases: list[tuple[dict[str, Any], dict[str, str], str]] = [
        ({}, {"Last-Event-ID": "garbage"}, "Last-Event-ID"),
        ({"last_event_id": "v1;t=1:x:r"}, {}, "last_event_id"),
        ({"max_points": 2}, {}, "max_points"),
        ({"max_points": 10**9}, {}, "max_points"),
    ]
    for params, headers, field in cases:
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["detail"]}, response.text
    assert other_client.get(path).status_code == 404
    assert other_client.get(f"/trials/{run['id']}/stream").status_code == 404
    assert client.get("/sweeps/999999/stream").status_code == 404
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
