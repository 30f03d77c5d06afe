"""SDK fixtures: one real server per module on a PostgreSQL database of its own, and
clients of it (an admin of the default project)."""

from __future__ import annotations

from collections.abc import Iterator

import lrlab
import pytest

from tests.support.lrlab_server import LrlabServer
from tests.support.postgres import temporary_pg_database


@pytest.fixture(scope="module")
def sdk_db_url(pg_server: str) -> Iterator[str]:
    """A database for this module's server alone (the store fixture wipes the shared one)."""
    with temporary_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def lrlab_server(
    sdk_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LrlabServer]:
    srv = LrlabServer(sdk_db_url, tmp_path_factory.mktemp("lrlab-sdk"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(lrlab_server: LrlabServer) -> Iterator[lrlab.Client]:
    with lrlab.Client(lrlab_server.url, lrlab_server.token, timeout=30.0) as c:
        yield c
