"""Sweep webhooks: events enqueued once, posted to a real local receiver, retried with
backoff on a fake clock, refused for targets outside the allowlist, and never held up
beyond the timeout by a receiver that hangs."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from services.alerts.notifier import Notifier, NotifierTick
from services.alerts.webhooks import WebhookSender, signature
from services.analyzer import Diagnosis, Finding
from services.domain.records import TrialStatus
from services.domain.submissions import NewSweep, NewTrial
from services.settings import Settings
from services.store import Store
from services.store.tables import NotificationRow
from tests.support.lrlab_server import cli_env, serving
from tests.support.waiting import wait_until

# The notifier's clock, fixed: findings are stamped with real time, so it starts near now.
T0 = datetime.now(UTC).replace(microsecond=0)


def outbox(store: Store, sweep_id: int) -> list[NotificationRow]:
    """The sweep's events in the outbox, in the order they were added."""
    with store.db.session() as s:
        query = select(NotificationRow).where(NotificationRow.sweep_id == sweep_id)
        return list(s.scalars(query.order_by(NotificationRow.id)))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers with the next
    scripted status (200 when the script is empty). Paths under /hang wait until released."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.path.startswith("/hang"):
                    outer.release.wait(30)
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if path is None or r["path"] == path]


def hook_settings(tmp_path: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "webhook_allowed_hosts": "127.0.0.1",
        "webhook_timeout_seconds": 0.5,
        "webhook_backoff_seconds": 10,
        "webhook_backoff_max_seconds": 60,
        "webhook_max_attempts": 3,
        **overrides,
    }
    return Settings(**options)


def notifier(store: Store, settings: Settings) -> Notifier:
    return Notifier(store, settings, clock=lambda: T0)


def sweep_with_hook(
    store: Store, url: str, n: int = 2, **notify: Any
) -> tuple[int, int, list[int]]:
    project = store.projects.create(f"p{time.monotonic_ns()}")
    spec = {"notify": {"url": url, "min_severity": "warning", **notify}}
    sweep = store.sweeps.create(
        project.id,
        NewSweep("lr-grid", "grid", spec, "val_loss", "minimize", None, max_concurrent=n),
        [
            NewTrial(params={"lr": 10.0**-i}, spec={"task": "digits"}, max_restarts=0)
            for i in range(n)
        ],
    )
    trials = [store.trial_states.claim_next("t", lambda t: True) for _ in range(n)]
    return project.id, sweep.id, [t.id for t in trials if t is not None]


def found(store: Store, project_id: int, trial_id: int, kind: str, severity: str) -> None:
    finding = Finding(kind, severity, 0.9, 40, f"{kind} at 40", {"x": 1.0}, "lower the lr")  # type: ignore[arg-type]
    store.findings.upsert(project_id, trial_id, Diagnosis((finding,), provisional=True))


def end_sweep(store: Store, project_id: int, trials: list[int], values: list[float]) -> None:
    for trial, value in zip(trials, values, strict=True):
        points = [("val_loss", 0, 5.0, None), ("val_loss", 9, value, None)]
        store.metrics.write(project_id, trial, points)
        assert store.trial_states.finish(trial, 0, TrialStatus.SUCCEEDED)
    store.trial_states.finish_sweeps()


def armed(
    store: Store, tmp_path: Path, receiver: Receiver, path: str, statuses: list[int], **options: Any
) -> tuple[int, Notifier]:
    """A sweep whose trial has a critical finding, a receiver answering `statuses`, and a
    notifier on the fixed clock: (sweep id, notifier)."""
    project_id, sweep_id, (t1, _) = sweep_with_hook(store, receiver.url + path)
    found(store, project_id, t1, "divergence", "critical")
    receiver.statuses = statuses
    return sweep_id, notifier(store, hook_settings(tmp_path, **options))


# -- delivery --------------------------------------------------------------------------------


def test_findings_and_the_sweep_end_reach_the_receiver_once(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    settings = hook_settings(tmp_path, webhook_secret="s3cret")
    project_id, sweep_id, (t1, t2) = sweep_with_hook(store, receiver.url + "/hook")
    found(store, project_id, t1, "divergence", "critical")
    found(store, project_id, t2, "plateau", "info")  # below the sweep's min_severity
    hooks = notifier(store, settings)
    first = hooks.tick()
    assert (first.enqueued, first.delivered) == (1, 1)
    (event,) = receiver.events()
    assert event["type"] == "finding" and event["key"] == f"finding:{t1}:divergence"
    assert event["sweep"]["id"] == sweep_id and event["trial"] == {"id": t1, "number": 0}
    assert event["finding"]["kind"] == "divergence" and event["finding"]["severity"] == "critical"
    headers = receiver.requests[0]["headers"]
    assert headers["X-Lrlab-Event"] == "finding"
    assert headers["X-Lrlab-Delivery"] == f"finding:{t1}:divergence"
    assert headers["Content-Type"] == "application/json"
    expected = signature("s3cret", headers["X-Lrlab-Timestamp"], receiver.requests[0]["body"])
    assert hmac.compare_digest(headers["X-Lrlab-Signature"], expected)

    found(store, project_id, t1, "divergence", "critical")  # the same finding again: no new event
    end_sweep(store, project_id, [t1, t2], [0.9, 0.4])
    second = hooks.tick()
    assert (second.enqueued, second.delivered) == (1, 1)
    end = receiver.events()[-1]
    assert end["type"] == "sweep_end" and end["key"] == f"sweep_end:{sweep_id}"
    assert end["sweep"]["status"] == "finished"
    assert end["summary"]["trials"] == {"succeeded": 2} and end["summary"]["total"] == 2
    best = end["summary"]["best"]
    assert (best["trial_id"], best["value"], best["step"]) == (t2, 0.4, 9)
    assert best["params"] == {"lr": 0.1}
    assert hooks.tick() == NotifierTick()  # nothing left to do
    assert len(receiver.requests) == 2
    stored = outbox(store, sweep_id)
    assert [n.attempts for n in stored] == [1, 1] and all(n.delivered_at for n in stored)


def test_a_failing_receiver_gets_retries_with_backoff(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    sweep_id, hooks = armed(store, tmp_path, receiver, "/flaky", [500, 503], webhook_max_attempts=5)
    assert hooks.tick(T0).retrying == 1
    (pending,) = outbox(store, sweep_id)
    assert pending.attempts == 1 and pending.last_error == "HTTP 500"
    assert pending.next_attempt_at == T0 + timedelta(seconds=10)
    assert hooks.tick(T0 + timedelta(seconds=9)) == NotifierTick()  # not due yet
    assert len(receiver.requests) == 1
    assert hooks.tick(T0 + timedelta(seconds=10)).retrying == 1
    (pending,) = outbox(store, sweep_id)
    assert pending.next_attempt_at == T0 + timedelta(seconds=30)  # 10 s, then 20 s
    assert pending.last_error == "HTTP 503"
    assert hooks.tick(T0 + timedelta(seconds=29)).delivered == 0
    assert hooks.tick(T0 + timedelta(seconds=30)).delivered == 1
    (done,) = outbox(store, sweep_id)
    assert done.attempts == 3 and done.delivered_at is not None and done.failed_at is None
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Lrlab-Delivery"] for r in receiver.requests}) == 1


def test_after_the_last_attempt_the_event_is_given_up_with_its_error(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    statuses = [500, 502, 200]
    sweep_id, hooks = armed(store, tmp_path, receiver, "/down", statuses, webhook_max_attempts=2)
    assert hooks.tick(T0).retrying == 1
    assert hooks.tick(T0 + timedelta(hours=1)).failed == 1
    (gone,) = outbox(store, sweep_id)
    assert gone.failed_at is not None and gone.delivered_at is None
    assert gone.attempts == 2 and gone.last_error == "HTTP 502"
    assert hooks.tick(T0 + timedelta(days=1)) == NotifierTick()
    assert len(receiver.requests) == 2


def test_a_hanging_receiver_costs_one_timeout_and_blocks_no_other_hook(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    settings = hook_settings(tmp_path, webhook_timeout_seconds=0.5)
    slow_project, slow_sweep, (slow, _) = sweep_with_hook(store, receiver.url + "/hang")
    fast_project, fast_sweep, (fast, _) = sweep_with_hook(store, receiver.url + "/fast")
    found(store, slow_project, slow, "divergence", "critical")
    found(store, fast_project, fast, "divergence", "critical")
    hooks = notifier(store, settings)
    started = time.monotonic()
    tick = hooks.tick(T0)
    took = time.monotonic() - started
    assert (tick.delivered, tick.retrying) == (1, 1)
    assert took < 5, f"a tick took {took:.1f} s with a 0.5 s timeout"
    (stuck,) = outbox(store, slow_sweep)
    assert stuck.last_error is not None and "Timeout" in stuck.last_error
    (sent,) = outbox(store, fast_sweep)
    assert sent.delivered_at is not None


def test_targets_are_checked_again_at_delivery(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    project_id, sweep_id, (t1, _) = sweep_with_hook(store, "http://hooks.example.com/x")
    found(store, project_id, t1, "divergence", "critical")
    settings = hook_settings(tmp_path, webhook_allowed_hosts="*.example.com")
    # The name resolves to a private address; a wildcard entry does not allow that.
    sender = WebhookSender(
        settings.webhook_hosts, timeout=0.5, resolver=lambda host, port: ["10.1.2.3"]
    )
    hooks = Notifier(store, settings, clock=lambda: T0, sender=sender)
    assert hooks.tick().failed == 1
    (refused,) = outbox(store, sweep_id)
    assert refused.attempts == 1 and refused.failed_at is not None
    assert refused.last_error is not None
    assert "private or local address (10.1.2.3)" in refused.last_error
    assert receiver.requests == []


def test_a_cancelled_sweep_is_announced_once_its_running_trials_stop(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    project_id, sweep_id, (t1, t2) = sweep_with_hook(store, receiver.url + "/end", n=2)
    store.sweeps.cancel(project_id, sweep_id)
    hooks = notifier(store, hook_settings(tmp_path))
    assert hooks.tick().enqueued == 0  # both trials still running
    assert store.trial_states.finish(t1, 0, TrialStatus.CANCELLED)
    assert store.trial_states.finish(t2, 0, TrialStatus.CANCELLED)
    assert hooks.tick().delivered == 1
    (end,) = receiver.events()
    assert end["sweep"]["status"] == "cancelled"
    assert end["summary"]["trials"] == {"cancelled": 2} and end["summary"]["best"] is None


def test_events_the_sweep_did_not_ask_for_are_not_sent(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    p1, _, (t1, _) = sweep_with_hook(store, receiver.url + "/x", events=["sweep_end"])
    found(store, p1, t1, "divergence", "critical")
    p2, _, (u1, u2) = sweep_with_hook(store, receiver.url + "/y", events=["finding"])
    end_sweep(store, p2, [u1, u2], [1.0, 2.0])
    hooks = notifier(store, hook_settings(tmp_path))
    assert hooks.tick().enqueued == 0
    assert hooks.tick().enqueued == 0
    assert receiver.requests == []


def test_the_background_loop_delivers_and_stops(
    store: Store, tmp_path: Path, receiver: Receiver
) -> None:
    project_id, _, (t1, _) = sweep_with_hook(store, receiver.url + "/loop")
    found(store, project_id, t1, "divergence", "critical")
    hooks = Notifier(store, hook_settings(tmp_path, notifier_interval_seconds=0.05))
    hooks.start()
    try:
        wait_until(lambda: receiver.requests, "a delivery by the background loop", 20)
    finally:
        hooks.stop(timeout=10)
    assert receiver.events()[0]["key"] == f"finding:{t1}:divergence"


# -- submission ------------------------------------------------------------------------------


def _client(store: Store, settings: Settings) -> TestClient:
    project = store.projects.create(f"api{time.monotonic_ns()}")
    issued = store.projects.issue_token(project.id, "t", is_admin=True)
    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {issued.secret}"
    return client


def _sweep(url: str) -> dict[str, Any]:
    return {"name": "hooked", "base": {"task": "digits"}, "notify": {"url": url}}


def test_post_sweeps_refuses_targets_outside_the_rules(store: Store, tmp_path: Path) -> None:
    allowed = "hooks.example.com, *.example.org, 127.0.0.1"
    client = _client(store, hook_settings(tmp_path, webhook_allowed_hosts=allowed))
    refused = {
        "ftp://hooks.example.com/x": "http or https URL, not 'ftp'",
        "file:///etc/passwd": "http or https URL, not 'file'",
        "gopher://127.0.0.1:70/": "http or https URL",
        "http://evil.example.net/hook": "not in this server's webhook allowlist",
        "http://example.org/hook": "not in this server's webhook allowlist",
        "http://169.254.169.254/latest/meta-data": "not in this server's webhook allowlist",
        "http://user:pw@hooks.example.com/": "must not carry credentials",
        "http:///nohost": "must name a host",
        "http://hooks.example.com:99999/": "not a valid URL",
    }
    for url, message in refused.items():
        response = client.post("/sweeps", json=_sweep(url))
        assert response.status_code == 422, (url, response.text)
        (error,) = response.json()["detail"]
        assert error["field"] == "notify.url" and message in error["message"], (url, error)
    for url in (
        "https://hooks.example.com/lrlab",
        "https://ci.example.org:8443/hooks?x=1",
        "http://127.0.0.1:9/receiver",
    ):
        response = client.post("/sweeps", json=_sweep(url))
        assert response.status_code == 201, (url, response.text)
    assert client.get("/sweeps").json()["total"] == 3


def test_webhooks_are_off_without_an_allowlist(client: TestClient) -> None:
    response = client.post("/sweeps", json=_sweep("https://hooks.example.com/x"))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["field"] == "notify.url"
    assert "webhooks are disabled on this server" in error["message"]
    assert "LRLAB_WEBHOOK_ALLOWED_HOSTS" in error["message"]
    assert client.post("/sweeps", json={"base": {"task": "digits"}}).status_code == 201


# -- wired into `lrlab serve` ----------------------------------------------------------------


@pytest.mark.subprocess
def test_lrlab_serve_runs_the_notifier(tmp_path: Path, receiver: Receiver) -> None:
    """The real entry point, API only, with webhooks on: a cancelled sweep is announced."""
    env = cli_env(LRLAB_WEBHOOK_ALLOWED_HOSTS="127.0.0.1", LRLAB_NOTIFIER_INTERVAL_SECONDS="0.1")
    data_dir = tmp_path / "data"
    with serving(data_dir, "--no-scheduler", "--no-analyzer", env=env, timeout=90) as url:
        token = (data_dir / "admin-token").read_text().strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        sweep = api.post("/sweeps", json=_sweep(receiver.url + "/served")).json()
        assert api.post(f"/sweeps/{sweep['id']}/cancel").json()["status"] == "cancelled"
        # The server's notifier runs in another process.
        wait_until(lambda: receiver.requests, "a webhook from the served notifier", 90)
        (event,) = receiver.events("/served")
        assert event["type"] == "sweep_end" and event["sweep"]["id"] == sweep["id"]
        assert event["summary"]["trials"] == {"cancelled": 1}
