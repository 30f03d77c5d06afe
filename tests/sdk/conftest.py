"""SDK fixtures: one real server per module on a PostgreSQL database of its own, and
clients of it (an admin of the default project)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lrlab
import pytest

from tests.conftest import temporary_pg_database
from tests.sdk.server import LrlabServer


@pytest.fixture(scope="module")
def sdk_db_url(pg_server: str) -> Iterator[str]:
    """A database for this module's server alone (the store fixture wipes the shared one)."""
    with temporary_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def server(sdk_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrlabServer]:
    srv = LrlabServer(sdk_db_url, tmp_path_factory.mktemp("lrlab-sdk"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: LrlabServer) -> Iterator[lrlab.Client]:
    with lrlab.Client(server.url, server.token, timeout=30.0) as c:
        yield c


def job_spec(**overrides: Any) -> dict[str, Any]:
    return {"task": {"name": "digits"}, **overrides}


def sweep_spec(lrs: tuple[float, ...] = (0.01, 0.1), **overrides: Any) -> dict[str, Any]:
    """A grid sweep over the optimizer's lr: one queued trial per lr."""
    return {
        "name": "sdk-sweep",
        "base": job_spec(optimizer={"name": "sgd", "lr": 0.1}),
        "space": {"optimizer.lr": {"values": list(lrs)}},
        **overrides,
    }


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
