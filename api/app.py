"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.routes import (
    findings,
    health,
    lr_find,
    metrics,
    projects,
    recommendations,
    registry,
    runs,
    streams,
    sweep_analysis,
    sweeps,
    trials,
)
from api.version import VERSION
from services.domain.capacity import ClusterCapacity
from services.settings import Settings, get_settings
from services.store import Store, open_store

DESCRIPTION = """
lrlab runs learning-rate experiments: submit a sweep or a job, watch every step's metrics,
and read what went wrong and what to change. Every route but `/health` takes a bearer token
and sees only that token's project.
"""


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    wake: Callable[[], None] | None = None,
    capacity: Callable[[], ClusterCapacity | None] | None = None,
) -> FastAPI:
    """Build the app. A given store is used as is (tests); otherwise one is opened from the
    settings at startup, with the schema upgraded to the latest migration. `wake` is called
    after new work is stored or a trial is ended or cancelled (the background loops'
    wake-up, so that they need not wait for their next tick; see api.loops). `capacity`
    says what the cluster's nodes offer, as the scheduler in this process last saw them
    (None: not known), so that work no node can run is refused at submission."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store or open_store(settings.resolved_database_url)
        try:
            yield
        finally:
            if owned:
                app.state.store.close()

    app = FastAPI(title="lrlab", version=VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.wake = wake or (lambda: None)
    app.state.capacity = capacity or (lambda: None)
    if store is not None:
        app.state.store = store
    errors.install(app)
    routers = (health, registry, projects, sweeps, sweep_analysis, trials, findings, metrics, runs)
    for module in (*routers, streams, lr_find, recommendations):
        app.include_router(module.router)
    return app
