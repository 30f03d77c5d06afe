"""Live events of a sweep or a trial, over SSE, resumed from the last event id whenever the
connection drops (the server replays what came after it)."""

from __future__ import annotations

import json
from collections.abc import Generator
from contextlib import closing
from typing import Any

import httpx
from pydantic import Field

from lrlab._http import Http
from lrlab._retry import RetryPolicy, retryable_status
from lrlab._sse import parse_sse
from lrlab.errors import ConnectionFailed, LrlabError
from lrlab.models import Finding, Model, to_float

END = "end"


class MetricPoint(Model):
    trial_id: int | None = None
    name: str
    step: int
    value: float
    time: float | None = None


class StreamEvent(Model):
    """One event: `type` is metrics, finding, trial or end (others may come later);
    `data` is its decoded JSON body; `id` the cursor to resume after it."""

    id: str | None = None
    type: str
    data: Any = Field(default=None)

    @property
    def trial_id(self) -> int | None:
        """The trial the event is about, where it names one."""
        if not isinstance(self.data, dict):
            return None
        value = self.data.get("trial_id", self.data.get("id") if self.type == "trial" else None)
        return value if isinstance(value, int) else None

    @property
    def points(self) -> list[MetricPoint]:
        """The metric points of a `metrics` event (empty for other types)."""
        if self.type != "metrics":
            return []
        body = self.data
        trial_id = body.get("trial_id") if isinstance(body, dict) else None
        raw = body.get("points", []) if isinstance(body, dict) else body
        points = []
        for p in raw if isinstance(raw, list) else []:
            if isinstance(p, dict):
                fields = {"trial_id": trial_id, **p, "value": to_float(p.get("value"))}
                points.append(MetricPoint.model_validate(fields))
        return points

    @property
    def finding(self) -> Finding | None:
        """The finding of a `finding` event."""
        if self.type != "finding" or not isinstance(self.data, dict):
            return None
        body = self.data.get("finding", self.data)
        return Finding.model_validate({**body}) if isinstance(body, dict) else None


def _decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


class EventStream:
    """Iterate to receive events until the server sends `end`. A dropped connection, a
    timeout or a 429/5xx is followed by a reconnect with Last-Event-ID (up to
    `max_reconnects` in a row without an event in between)."""

    def __init__(
        self,
        http: Http,
        path: str,
        last_event_id: str | None = None,
        max_reconnects: int = 10,
        *,
        read_timeout: float = 60.0,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.http = http
        self.path = path
        self.last_event_id = last_event_id
        self.params = params
        self.reconnects = 0  # total, for callers that want to know
        self.policy = RetryPolicy(retries=max_reconnects, backoff=0.2, max_backoff=5.0)
        self.timeout = httpx.Timeout(http.client.timeout.connect or 10.0, read=read_timeout)

    def __iter__(self) -> Generator[StreamEvent, None, None]:
        failures = 0
        while True:
            server_retry: float | None = None
            try:
                with closing(self._connect()) as received:
                    for event, retry_ms in received:
                        failures = 0
                        if retry_ms is not None:
                            server_retry = retry_ms / 1000
                        if event is None:
                            continue
                        yield event
                        if event.type == END:
                            return
                reason: Exception = ConnectionFailed("the stream ended without an end event")
            except httpx.TransportError as exc:
                reason = exc
            except LrlabError as exc:
                if exc.status_code is None or not retryable_status(exc.status_code, True):
                    raise
                reason = exc
            if failures >= self.policy.retries:
                raise ConnectionFailed(
                    f"stream {self.path} lost after {failures} reconnects: {reason!r}"
                ) from reason
            self.policy.sleep(failures, server_retry)
            failures += 1
            self.reconnects += 1

    def _connect(self) -> Generator[tuple[StreamEvent | None, int | None], None, None]:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else None
        with self.http.stream(
            self.path, params=self.params, headers=headers, timeout=self.timeout
        ) as response:
            for msg in parse_sse(response.iter_lines()):
                if msg.id is not None:
                    self.last_event_id = msg.id
                event = StreamEvent(id=msg.id, type=msg.event, data=_decode(msg.data))
                yield (None if msg.event == "ping" else event), msg.retry_ms
