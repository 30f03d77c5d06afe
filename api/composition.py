"""The composition root: settings in, a running server out.

It opens the store, makes sure a local admin token exists, starts the background loops the
settings ask for (the scheduler over Ray and its housekeeping, the live analyzer, the
webhook notifier; api/loops.py) and serves the API; on the way out it stops them. The
commands in api/cli.py only turn options into Settings and call serve() here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import click
from fastapi import FastAPI

from api import serving
from api.app import create_app
from api.loops import start_loops
from services.bootstrap import ensure_local_admin
from services.settings import Settings
from services.store import open_store


def serve(settings: Settings) -> None:
    """Serve the API, with everything beside it, until uvicorn stops (Ctrl-C, SIGTERM)."""
    with assembled(settings) as app:
        click.echo(f"lrlab serving http://{settings.api_host}:{settings.api_port}", err=True)
        click.echo(f"admin token in {settings.admin_token_file.resolve()}", err=True)
        # uvicorn, ending live streams when it stops
        serving.serve(app, host=settings.api_host, port=settings.api_port, log_level="warning")


@contextmanager
def assembled(settings: Settings) -> Iterator[FastAPI]:
    """The API app over an open store, with the background loops the settings ask for
    running (api/loops.py says which and who wakes whom); all of it stopped on exit."""
    with ExitStack() as running:
        store = open_store(settings.resolved_database_url)
        running.callback(store.close)
        ensure_local_admin(store, settings)
        loops = start_loops(store, settings)
        running.callback(loops.stop)
        yield create_app(settings, store, wake=loops.wake, capacity=loops.capacity)
