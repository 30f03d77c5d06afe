"""Server-sent events, parsed as the HTML standard says (event, data, id, retry; comments
and unknown fields ignored; multi-line data joined with newlines)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseMessage:
    event: str
    data: str
    id: str | None  # the last event id seen so far on this connection
    retry_ms: int | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Messages from the lines of an event stream (line endings already stripped)."""
    event, last_id, retry = "", None, None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event or "message", "\n".join(data), last_id, retry)
            event, data, retry = "", [], None
            continue
        if line.startswith(":"):
            continue  # a comment: servers send these to keep the connection alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
