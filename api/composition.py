"""The composition root: settings in, a running server out.

It opens the store, makes sure a local admin token exists, starts what runs beside the API
as the settings ask (the scheduler over Ray, the live analyzer, the webhook notifier) and
serves the API; on the way out it stops them, newest first. The commands in api/cli.py
only turn options into Settings and call serve() here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import click
from fastapi import FastAPI

from api import serving
from api.app import create_app
from services.alerts.notifier import Notifier
from services.analysis.live_analyzer import LiveAnalyzer
from services.bootstrap import ensure_local_admin
from services.scheduling.scheduler import Scheduler
from services.settings import Settings
from services.store import Store, open_store

if TYPE_CHECKING:
    from workers.ray_launcher import RayLauncher


def serve(settings: Settings) -> None:
    """Serve the API, with everything beside it, until uvicorn stops (Ctrl-C, SIGTERM)."""
    with assembled(settings) as app:
        click.echo(f"lrlab serving http://{settings.api_host}:{settings.api_port}", err=True)
        click.echo(f"admin token in {settings.admin_token_file.resolve()}", err=True)
        # uvicorn, ending live streams when it stops
        serving.serve(app, host=settings.api_host, port=settings.api_port, log_level="warning")


@contextmanager
def assembled(settings: Settings) -> Iterator[FastAPI]:
    """The API app over an open store, with the background services the settings ask for
    running; all of it stopped in reverse order of start on exit."""
    with ExitStack() as running:
        store = open_store(settings.resolved_database_url)
        running.callback(store.close)
        ensure_local_admin(store, settings)
        wake: Callable[[], None] | None = None
        if settings.run_scheduler:
            scheduler, launcher = start_scheduler(store, settings)
            running.callback(launcher.close)
            running.callback(scheduler.stop)
            wake = scheduler.wake
        if settings.run_analyzer:
            running.callback(start_analyzer(store, settings, wake).stop)
        if settings.webhook_hosts:
            running.callback(start_notifier(store, settings).stop, timeout=10)
        yield create_app(settings, store, wake=wake)


def start_scheduler(store: Store, settings: Settings) -> tuple[Scheduler, RayLauncher]:
    """The scheduler over a Ray launcher: local Ray unless LRLAB_RAY_ADDRESS names one."""
    from workers.ray_launcher import RayLauncher  # Ray loads only when trials run here

    launcher = RayLauncher(settings.ray_address, settings.ray_num_cpus)
    scheduler = Scheduler(
        store,
        launcher,
        database_url=settings.resolved_database_url,
        checkpoint_root=settings.checkpoint_dir.resolve(),
        lease_seconds=settings.lease_seconds,
        run_silence_seconds=settings.run_silence_seconds,
    )
    scheduler.start()
    return scheduler, launcher


def start_analyzer(
    store: Store, settings: Settings, wake: Callable[[], None] | None
) -> LiveAnalyzer:
    """The live analyzer; a stop it asks for wakes the scheduler to record it sooner."""
    live = LiveAnalyzer(store, settings, on_stop=wake)
    live.start()
    return live


def start_notifier(store: Store, settings: Settings) -> Notifier:
    """Webhooks of the sweeps that ask for them (only when an allowlist enables them)."""
    notifier = Notifier(store, settings)
    notifier.start()
    return notifier
