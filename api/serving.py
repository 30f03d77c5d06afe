"""Serving the app with uvicorn so that live streams end when the server stops.

uvicorn waits for open responses to finish before it shuts down, and an event stream
never finishes by itself: without a word from the server, Ctrl-C would hang on every
connected dashboard. The server here sets the app's `streams_closing` event first; each
stream sees it within one poll interval and ends (its client reconnects elsewhere with
Last-Event-ID).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI


def streams_closing(app: FastAPI) -> threading.Event:
    """The event that tells the app's live streams to end (made on first use)."""
    event: threading.Event | None = getattr(app.state, "streams_closing", None)
    if event is None:
        event = app.state.streams_closing = threading.Event()
    return event


class Server(uvicorn.Server):
    """A uvicorn server that ends the app's streams before waiting for its connections."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        super().__init__(uvicorn.Config(app, **options))
        self._closing = streams_closing(app)
        self._closing.clear()  # the app may have been served (and stopped) before

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._closing.set()
        await super().shutdown(sockets)


def serve(app: FastAPI, **options: Any) -> None:
    """uvicorn.run(app, **options), with streams that end on shutdown."""
    Server(app, **options).run()
