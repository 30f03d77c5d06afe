"""A real `lrlab serve` on a free port, started as a user would: `serving` for one test's
server, `LrlabServer` for one that is stopped and restarted on the same port and database
(what the SDK tests talk to)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tests.support.net import free_port
from tests.support.waiting import wait_until

LRLAB = str(Path(sys.executable).with_name("lrlab"))


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without LRLAB_* settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRLAB_")}
    return {**env, **extra}


def healthy(proc: subprocess.Popen[bytes], url: str) -> Callable[[], bool]:
    """A condition for wait_until: the server answers /health (and fails at once when
    the process has exited, so nobody waits out the deadline on a dead server)."""

    def check() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"lrlab serve exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
        return False

    return check


@contextlib.contextmanager
def serving(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> Iterator[str]:
    """`lrlab serve --data-dir data_dir *extra` on a free port, healthy; its URL.
    Terminated (SIGTERM) on exit."""
    url = f"http://127.0.0.1:{free_port()}"
    cmd = [LRLAB, "serve", "--port", url.rsplit(":", 1)[1], "--data-dir", str(data_dir)]
    proc = subprocess.Popen([*cmd, *extra], env=cli_env() if env is None else env)
    try:
        wait_until(healthy(proc, url), "lrlab serve answering /health", timeout)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class LrlabServer:
    """`lrlab serve` (API only, no scheduler) in a session of its own, logging to
    data_dir/server.log; stoppable and restartable on the same port and database."""

    def __init__(self, database_url: str, data_dir: Path, port: int | None = None) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def start(self, timeout: float = 60.0) -> None:
        assert self.proc is None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        cmd = [LRLAB, "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--database-url", self.database_url, "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            cmd, env=cli_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            wait_until(healthy(self.proc, self.url), "lrlab serve answering /health", timeout)
        except (AssertionError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}: {self.log_tail()}") from exc

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text()[-3000:] if path.exists() else ""
