"""Shared fixtures: real PostgreSQL (a fresh database per test session) and SQLite, API
clients, a local Ray; and the markers that follow from them.

Postgres tests skip only outside CI when no server answers; with CI=true they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from services.settings import Settings
from services.store import Store, open_store
from services.store.tables import Base
from tests.support.markers import markers_for
from tests.support.postgres import temporary_pg_database

PG_ADMIN_URL = os.environ.get(
    "LRLAB_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    # One intra-op thread, as each trial gets on a worker: on 2 shared cores more threads
    # only spin against each other (a digits step goes from ~1 ms to ~60 ms).
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        for marker in sorted(markers_for(getattr(item, "fixturenames", ()), params)):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin conninfo of a reachable PostgreSQL server."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {exc}")
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """SQLAlchemy URL of an empty database created for this test session."""
    with temporary_pg_database(pg_server) as url:
        yield url


@pytest.fixture
def fresh_pg_url(pg_server: str) -> Iterator[str]:
    """An empty database of its own, for tests that migrate from nothing."""
    with temporary_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="session")
def _session_stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Store]]:
    stores: dict[str, Store] = {}
    yield stores
    for store in stores.values():
        store.close()


def _wipe(store: Store) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with store.db.session() as s:
        if store.db.is_postgres:
            s.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                s.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest,
    _session_stores: dict[str, Store],
    tmp_path_factory: pytest.TempPathFactory,
) -> Store:
    """An empty, migrated store on each backend (one schema per session, wiped per test)."""
    backend = request.param
    if backend not in _session_stores:
        if backend == "postgres":
            url = request.getfixturevalue("pg_url")
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'lrlab.db'}"
        _session_stores[backend] = open_store(url)
    current = _session_stores[backend]
    _wipe(current)
    return current


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", max_points_per_request=10_000)


def _client_for(app: FastAPI, store: Store, project_name: str) -> TestClient:
    project = store.projects.create(project_name)
    issued = store.projects.issue_token(project.id, "test", is_admin=True)
    client = TestClient(app, raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {issued.secret}"
    return client


@pytest.fixture
def app(store: Store, settings: Settings) -> FastAPI:
    return create_app(settings, store)


@pytest.fixture
def client(app: FastAPI, store: Store) -> Iterator[TestClient]:
    """An API client with an admin token of project 'alpha' (runs on both backends)."""
    with _client_for(app, store, "alpha") as c:
        yield c


@pytest.fixture
def other_client(app: FastAPI, store: Store) -> Iterator[TestClient]:
    """A client of a second project, 'beta', to check that projects never see each other."""
    with _client_for(app, store, "beta") as c:
        yield c


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One local Ray instance for the whole test session (starting Ray takes seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
