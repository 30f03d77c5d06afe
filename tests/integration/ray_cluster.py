"""A real Ray cluster on this machine for tests: a head and extra nodes, each one
`ray start --block` process of its own, and lrlab's scheduler as a separate driver process.

Everything is scoped to what the test started: free ports, a temp dir per node (under the
test's tmp dir when its path is short enough for Ray's unix sockets), and a node
is stopped (or killed, to simulate its death) by signalling exactly the processes below its
own `ray start`. Never `ray stop`, which would stop every Ray instance on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from tests.support.net import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")

# For every process of the cluster and of the driver: a local cluster without token auth
# (Ray would otherwise enable it for a head and not for a joining node), no usage stats,
# node death noticed within ~2 s rather than Ray's default ~15 s, one thread per trial, and
# workers at normal priority (Ray nices them to 15: starved on a busy test machine).
CLUSTER_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_worker_niceness": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "3",
    "OMP_NUM_THREADS": "1",
}


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def process_tree(pid: int) -> set[int]:
    """pid and all its live descendants (Linux /proc)."""
    kids, tree, todo = _children(), set(), [pid]
    while todo:
        p = todo.pop()
        if p not in tree and Path(f"/proc/{p}").exists():
            tree.add(p)
            todo.extend(kids.get(p, []))
    return tree


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _short_dir(base: Path, name: str) -> Path:
    """A fresh directory for a node's Ray temp dir. Ray's sockets live ~60 characters
    below it and a unix socket path has at most 107, so a long base falls back to /tmp."""
    path = base / name
    if len(str(path)) > 40:
        return Path(tempfile.mkdtemp(prefix=f"lrlab-ray-{name}-"))
    path.mkdir(parents=True)
    return path


def _kill_all(pids: set[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


def _signal_tree(pid: int, sig: int) -> set[int]:
    tree = process_tree(pid)
    _kill_all(tree, sig)
    return tree


class RayNode:
    """One node: `ray start --block` and everything it starts (raylet, agents, workers)."""

    # `ray start` gives a raylet 30 s to register with the GCS; on a loaded machine that
    # can run out, and starting again is what an operator would do.
    ATTEMPTS = 2

    def __init__(self, name: str, base: Path, args: list[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.temp_dir = _short_dir(base, name)
        self._log = (self.temp_dir / "ray-start.log").open("a")
        for attempt in range(1, self.ATTEMPTS + 1):
            self.process = self._spawn(args, env)
            try:
                wait_until(self._started, f"ray node {name} started", timeout=120, every=0.2)
                return
            except AssertionError:
                self.kill()
                if attempt == self.ATTEMPTS:
                    self._log.close()
                    raise

    def _spawn(self, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        ports = {
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--metrics-export-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--runtime-env-agent-port": free_port(),
        }
        command = [
            str(RAY),
            "start",
            "--block",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.temp_dir}",
            *(f"{flag}={port}" for flag, port in ports.items()),
            *args,
        ]
        self._log.write(f"$ {' '.join(command)}\n")
        self._log.flush()
        self._since = self._log.tell()  # where this attempt's output starts
        return subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )

    def _started(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"ray start ({self.name}) exited:\n{self.output()[-3000:]}")
        log = (self.temp_dir / "ray-start.log").read_bytes()
        return b"Ray runtime started" in log[self._since :]

    def output(self) -> str:
        """What every `ray start` of this node printed."""
        return (self.temp_dir / "ray-start.log").read_text(errors="replace")

    def pids(self) -> set[int]:
        """Every live process of this node (the workers running trials among them)."""
        return process_tree(self.process.pid) if self.running else set()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Node death: SIGKILL to every process of the node at once, no clean-up."""
        _signal_tree(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """Gone for good: killed like kill(), a test cluster has nothing to save."""
        if self.running:
            self.kill()
        self._log.close()
        if self.temp_dir.parent == Path(tempfile.gettempdir()):  # the fallback: not pytest's
            shutil.rmtree(self.temp_dir, ignore_errors=True)


class LocalCluster:
    """A head node plus named extra nodes that join it."""

    def __init__(self, base: Path, *, head_cpus: float) -> None:
        self.base = base
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        head_args = [
            "--head",
            f"--port={self.port}",
            f"--num-cpus={head_cpus:g}",
            "--num-gpus=0",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
        ]
        self.head = RayNode("h", base, head_args, CLUSTER_ENV)
        self.nodes: dict[str, RayNode] = {}  # the latest node of each name
        self._started = [self.head]

    def add_node(
        self, name: str, *, cpus: float, gpus: float = 0, resources: dict[str, float] | None = None
    ) -> RayNode:
        args = [f"--address={self.address}", f"--num-cpus={cpus:g}", f"--num-gpus={gpus:g}"]
        if resources:
            args.append(f"--resources={json.dumps(resources)}")
        node = RayNode(f"{name}{len(self._started)}", self.base, args, CLUSTER_ENV)
        self.nodes[name] = node
        self._started.append(node)
        return node

    def shutdown(self) -> None:
        """Every node ever started, the head last (killed ones: just their temp dirs)."""
        for node in reversed(self._started):
            node.stop()


class Driver:
    """lrlab's scheduler in a process of its own, wired by `lrlab serve`'s composition root
    (api.loops.start_scheduler) from LRLAB_* settings, LRLAB_RAY_ADDRESS among them.

    It answers one JSON line per request line on stdin: `resources` -> Ray's cluster
    resources as the driver sees them. kill() and start() again is a scheduler restart."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = {**os.environ, **CLUSTER_ENV, **env}
        self.log = log
        self.start()

    def start(self) -> None:
        self._log: IO[str] = self.log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.cluster_driver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=self.env,
        )
        ready = self._read()
        assert ready.get("ready"), ready

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the driver exited:\n{self.log.read_text()[-5000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def resources(self) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write("resources\n")
        self.process.stdin.flush()
        return self._read()

    def wait_resources(self, timeout: float = 60, **want: float) -> None:
        """Until the cluster has exactly these totals (CPU=2, GPU=1, ...)."""

        def matches() -> bool:
            have = self.resources()
            return all(abs(have.get(k, 0.0) - v) < 1e-6 for k, v in want.items())

        wait_until(matches, f"cluster resources {want}", timeout, every=0.2)

    def kill(self) -> None:
        """The scheduler's process dies: SIGKILL, no clean-up (its Ray tasks die with it)."""
        self.process.kill()
        self.process.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # EOF: stop the scheduler and disconnect
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self._log.close()
