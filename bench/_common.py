"""Helpers shared by the worker benchmarks (runner_overhead, dispatch, first_metric).

Nothing here is timed: temporary PostgreSQL databases (always dropped, also on failure),
a `lrlab serve` subprocess, a trial to write metrics into, the machine's load, and the
markdown table every benchmark prints.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


# -- reporting --------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def environment_line() -> str:
    import platform

    import torch

    try:
        import ray

        ray_version = ray.__version__
    except ImportError:  # pragma: no cover - ray is a dependency of lrlab
        ray_version = "-"
    return (
        f"python {platform.python_version()}, torch {torch.__version__}, ray {ray_version}, "
        f"{os.cpu_count()} CPUs, load average at start {load_average()}"
    )


# -- PostgreSQL -------------------------------------------------------------------------
def sa_url(admin_url: str, dbname: str) -> str:
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


@contextlib.contextmanager
def pg_database(admin_url: str = PG_ADMIN, prefix: str = "lrlab_bench") -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its SQLAlchemy URL; dropped at the end
    (WITH (FORCE): leftover connections of killed workers do not keep it alive)."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- store objects ----------------------------------------------------------------------
def new_trial(store: Any, project_name: str = "bench", spec: dict[str, Any] | None = None) -> int:
    """A stored (queued) trial to write metric points into; returns its id."""
    from services.domain.submissions import NewSweep, NewTrial

    project = store.projects.get_by_name(project_name) or store.projects.create(project_name)
    sweep = store.sweeps.create(
        project.id,
        NewSweep(
            name="bench",
            method="single",
            spec={},
            metric_name="val_loss",
            metric_goal="minimize",
            max_trials=1,
            max_concurrent=1,
        ),
        [NewTrial(params={}, spec=spec or {}, max_restarts=0)],
    )
    page = store.trials.list(project.id, sweep.id, limit=1, offset=0)
    return int(page.items[0].id)


# -- lrlab serve ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def lrlab_server(
    url: str, data_dir: Path, extra_args: Sequence[str] = (), ready_timeout: float = 120.0
) -> Iterator[tuple[str, str]]:
    """`lrlab serve` as a subprocess (its own process group, so its Ray processes go with
    it); yields (base_url, admin token) once /health answers 200."""
    with lrlab_process(url, data_dir, extra_args, ready_timeout) as (_, base, token):
        yield base, token


@contextlib.contextmanager
def lrlab_process(
    url: str | None,
    data_dir: Path,
    extra_args: Sequence[str] = (),
    ready_timeout: float = 120.0,
    port: int | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """lrlab_server, also yielding the process; no `url`: the embedded SQLite database in
    `data_dir`; no `port`: a free one."""
    import httpx

    port = port or free_port()
    exe = Path(sys.executable).with_name("lrlab")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "api.cli"]
    cmd += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if url is not None:
        cmd += ["--database-url", url]
    cmd += ["--data-dir", str(data_dir), *extra_args]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"lrlab serve exited ({proc.returncode}):\n{log_path.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"lrlab serve not healthy in {ready_timeout:.0f} s:\n{log_path.read_text()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    break
            time.sleep(0.1)
        token = (data_dir / "admin-token").read_text().strip()
        yield proc, base, token
    finally:
        stop_process_group(proc)


def stop_process_group(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM the process we started (and its group: the Ray it started), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Ray's raylet/GCS were started in the server's session: make sure none outlive it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
