"""The `lrlab` entry point, run as a user would: a real process, a real port."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.lrlab_server import LRLAB, serving

pytestmark = pytest.mark.subprocess  # every test runs `lrlab` as a user would


@pytest.mark.slow
def test_serve_creates_a_working_admin_token_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir) as url:
        token_file = data_dir / "admin-token"
        token = token_file.read_text().strip()
        assert token.startswith("lrl_")
        assert token_file.stat().st_mode & 0o777 == 0o600
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/project", headers=headers).json()["name"] == "default"
        assert httpx.get(f"{url}/project").status_code == 401
    # A restart keeps the token that is on disk and still valid.
    with serving(data_dir) as url:
        assert token_file.read_text().strip() == token
        assert httpx.get(f"{url}/sweeps", headers=headers).status_code == 200


@pytest.mark.slow
def test_serve_reissues_a_token_when_the_file_is_gone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir):
        first = (data_dir / "admin-token").read_text().strip()
    (data_dir / "admin-token").unlink()
    with serving(data_dir) as url:
        second = (data_dir / "admin-token").read_text().strip()
        assert second != first
        r = httpx.get(f"{url}/project", headers={"Authorization": f"Bearer {second}"})
        assert r.json()["name"] == "default"


@pytest.mark.slow
def test_serve_on_postgres(tmp_path: Path, fresh_pg_url: str) -> None:
    with serving(tmp_path / "data", "--database-url", fresh_pg_url) as url:
        assert httpx.get(f"{url}/health").json()["database"] == "postgresql"


def test_db_upgrade_command(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    out = subprocess.run(
        [LRLAB, "db", "upgrade", "--database-url", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        check=True,
    )
    from services.store.migrate import heads

    assert f"database at head {heads()[0]}" in out.stdout
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"projects", "sweeps", "trials", "metric_points"} <= tables
