"""Live streams (server-sent events) of a sweep or a trial: metrics, findings, status.

The route polls a Feed (services.tracking.feeds) every `stream_poll_seconds`, sends what it found
with each event's cursor as its `id:`, and a comment when it has been quiet for
`stream_keepalive_seconds`. It ends after the `end` event, when the client goes away
(Starlette cancels it), when the server shuts down (api.serving), or when the store fails
(the client resumes from its last id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.deps import CurrentProject, SettingsDep, StoreDep
from api.serving import streams_closing
from services.domain.errors import InvalidInput
from services.settings import Settings
from services.tracking.feed_cursor import StreamCursor
from services.tracking.feeds import Feed, FeedLimits, StreamEvent

log = logging.getLogger("lrlab.api.streams")
router = APIRouter(tags=["streams"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
LastEventIdHeader = Annotated[
    str | None,
    Header(alias="Last-Event-ID", max_length=16_000, description="Resume after this event."),
]
LastEventIdQuery = Annotated[
    str | None,
    Query(max_length=16_000, description="Resume after this event (for clients without headers)."),
]
MaxPoints = Annotated[
    int | None,
    Query(ge=4, description="Downsample each series of a metrics event to this many points."),
]
RECONNECT_MS = 2000  # what a browser's EventSource waits before reconnecting
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _sse(event: StreamEvent) -> str:
    data = json.dumps(event.data, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


def _cursor(header: str | None, query: str | None) -> StreamCursor:
    if header:
        return StreamCursor.decode(header, "Last-Event-ID")
    return StreamCursor.decode(query, "last_event_id")


def _limits(settings: Settings, max_points: int | None) -> FeedLimits:
    if max_points is not None and max_points > settings.max_series_points:
        raise InvalidInput(
            f"max_points must be at most {settings.max_series_points}", field="max_points"
        )
    return FeedLimits(
        series_points=settings.stream_series_points,
        poll_points=settings.stream_poll_points,
        max_points=max_points,
    )


async def _events(feed: Feed, request: Request, settings: Settings) -> AsyncIterator[str]:
    closing = streams_closing(request.app)
    yield f"retry: {RECONNECT_MS}\n: lrlab live stream\n\n"  # headers out at once
    quiet_since = time.monotonic()
    while not closing.is_set():
        try:
            poll = await run_in_threadpool(feed.poll)
        except Exception:  # the store is away: end here, the client resumes from its id
            log.exception("stream %s stopped: polling the store failed", request.url.path)
            return
        if poll.events:
            yield "".join(_sse(e) for e in poll.events)
            quiet_since = time.monotonic()
        if poll.ended:
            return
        if poll.more:
            continue  # a backlog: the client's reading speed sets the pace
        if time.monotonic() - quiet_since >= settings.stream_keepalive_seconds:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(settings.stream_poll_seconds)


def _response(feed: Feed, request: Request, settings: Settings) -> StreamingResponse:
    return StreamingResponse(
        _events(feed, request, settings), media_type="text/event-stream", headers=_HEADERS
    )


@dataclass(frozen=True)
class StreamParams:
    cursor: StreamCursor
    limits: FeedLimits


def stream_params(
    settings: SettingsDep,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
    max_points: MaxPoints = None,
) -> StreamParams:
    return StreamParams(_cursor(last_event_id_header, last_event_id), _limits(settings, max_points))


StreamDep = Annotated[StreamParams, Depends(stream_params)]


@router.get("/sweeps/{sweep_id}/stream", response_class=StreamingResponse)
def sweep_stream(
    sweep_id: Id,
    request: Request,
    project: CurrentProject,
    store: StoreDep,
    settings: SettingsDep,
    params: StreamDep,
) -> StreamingResponse:
    """Events of the sweep as they happen: `trial` (status changes), `metrics` (new points
    of one trial: {trial_id, points: [{name, step, value, time}]}), `finding`, and `end`
    once the sweep is over and all of it was sent. Reconnect with the last event's id
    (Last-Event-ID or ?last_event_id=) to continue with nothing lost or repeated."""
    feed = Feed(store, project.id, sweep_id=sweep_id, cursor=params.cursor, limits=params.limits)
    return _response(feed, request, settings)


@router.get("/trials/{trial_id}/stream", response_class=StreamingResponse)
def trial_stream(
    trial_id: Id,
    request: Request,
    project: CurrentProject,
    store: StoreDep,
    settings: SettingsDep,
    params: StreamDep,
) -> StreamingResponse:
    """The events of one trial (or external run), as for a sweep; `end` when it ended."""
    feed = Feed(store, project.id, trial_id=trial_id, cursor=params.cursor, limits=params.limits)
    return _response(feed, request, settings)
