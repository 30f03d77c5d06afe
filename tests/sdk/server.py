"""A real `lrlab serve` (API only, no scheduler) on a free port, stoppable and restartable
on the same port and database: what the SDK tests talk to."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LRLAB = str(Path(sys.executable).with_name("lrlab"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without LRLAB_* settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRLAB_")}
    return {**env, **extra}


class LrlabServer:
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
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lrlab serve exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"lrlab serve not healthy in {timeout} s: {self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)  # polling a child process we started: nothing to await

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
