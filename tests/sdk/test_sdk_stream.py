"""Server-sent events: parsed as the standard says, and resumed from the last event id
when the connection drops."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import lrlab
import pytest
from lrlab._sse import SseMessage, parse_sse


def test_parse_sse_fields_comments_and_multiline_data() -> None:
    lines = [
        ": keep-alive",
        "id: 7",
        "event: metrics",
        'data: {"trial_id": 3,',
        'data: "points": []}',
        "",
        "retry: 1500",
        "data: plain",
        "",
        "event: end",
        "",  # no data: not dispatched
        "id",  # an empty id resets nothing harmful
        "data:no-space",
        "",
    ]
    assert list(parse_sse(lines)) == [
        SseMessage("metrics", '{"trial_id": 3,\n"points": []}', "7"),
        SseMessage("message", "plain", "7", retry_ms=1500),
        SseMessage("message", "no-space", ""),
    ]


def test_stream_events_decode_points_findings_and_trials() -> None:
    metrics = lrlab.StreamEvent(
        id="1",
        type="metrics",
        data={"trial_id": 4, "points": [{"name": "val_loss", "step": 9, "value": "NaN"}]},
    )
    (point,) = metrics.points
    assert point.trial_id == 4 and point.step == 9 and point.value != point.value
    finding = lrlab.StreamEvent(
        type="finding", data={"trial_id": 4, "finding": {"kind": "divergence", "step": 80}}
    )
    assert finding.finding is not None and finding.finding.kind == "divergence"
    assert finding.trial_id == 4 and finding.points == []
    trial = lrlab.StreamEvent(type="trial", data={"id": 5, "status": "succeeded"})
    assert trial.trial_id == 5 and trial.finding is None


class Dropping(httpx.SyncByteStream):
    """Sends `body`, then fails like a connection reset by a dying server."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise httpx.ReadError("connection reset by peer")


def event(ident: int, kind: str = "metrics") -> bytes:
    data = json.dumps({"trial_id": 1, "points": [{"name": "x", "step": ident, "value": 1.0}]})
    return f"id: {ident}\nevent: {kind}\ndata: {data}\n\n".encode()


def test_a_dropped_stream_resumes_after_the_last_event_id() -> None:
    asked: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        headers = {"content-type": "text/event-stream"}
        if len(asked) == 1:  # two events, then the connection drops
            return httpx.Response(200, headers=headers, stream=Dropping(event(1) + event(2)))
        if len(asked) == 2:  # one more, then a clean close without `end`
            return httpx.Response(200, headers=headers, content=event(3))
        if len(asked) == 3:  # a restarting server
            return httpx.Response(503, json={"detail": []})
        return httpx.Response(200, headers=headers, content=event(4) + event(5, "end"))

    client = lrlab.Client("http://lrlab.test", "t", transport=httpx.MockTransport(handle))
    stream = client.sweep(1).stream()
    received = list(stream)
    assert [e.id for e in received] == ["1", "2", "3", "4", "5"]
    assert [p.step for e in received for p in e.points] == [1, 2, 3, 4]
    assert received[-1].type == "end"
    assert asked == [None, "2", "3", "3"]
    assert stream.reconnects == 3 and stream.last_event_id == "5"


def test_a_stream_gives_up_after_its_reconnects() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = lrlab.Client("http://lrlab.test", "t", transport=httpx.MockTransport(handle))
    stream = client.stream_trial(1, max_reconnects=2)
    stream.policy = lrlab.RetryPolicy(retries=2, backoff=0.001)
    with pytest.raises(lrlab.ConnectionFailed, match="after 2 reconnects"):
        list(stream)


def test_a_stream_of_nothing_is_not_retried() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={"detail": "Not Found"}))
    client = lrlab.Client("http://lrlab.test", "t", transport=transport)
    with pytest.raises(lrlab.NotFound):
        list(client.stream_sweep(42, last_event_id="10"))
