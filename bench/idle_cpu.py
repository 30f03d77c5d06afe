"""Idle CPU: what an `lrlab serve` with nothing to do costs, in % of one core.

    .venv/bin/python bench/idle_cpu.py [--seconds 30] [--warmup 10] [--port N]
        [--postgres] [-- extra serve arguments, e.g. --no-scheduler]

Starts `lrlab serve` as a subprocess (its own process group; a temporary --data-dir, and
the embedded SQLite database in it, or with --postgres a fresh PostgreSQL database on
127.0.0.1, dropped at the end), waits for /health,
lets it settle for --warmup seconds (Ray's start-up), then reads CPU time (utime + stime
from /proc/<pid>/stat) at the start and the end of --seconds of wall time. Nothing is
submitted: no sweep, no run, no webhook. Two figures: the server process alone (its API,
its background loops and the Ray driver inside it), and its whole process group (Ray's
GCS, raylet and workers too; counted over the processes alive at both readings).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    environment_line,
    load_average,
    lrlab_process,
    pg_database,
    table,
)

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 on), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    if fields is None:
        raise RuntimeError(f"process {pid} is gone")
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15


def group_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds of every process in the process group `pgid`, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and int(fields[2]) == pgid:  # field 5: pgrp
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def measure(pid: int, seconds: float) -> tuple[float, float, int]:
    """(% of a core for the process, for its group, processes in the group)."""
    group_before, own_before, start = group_cpu(pid), cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)  # the measured window: the server is left alone
    group_after, own_after, wall = group_cpu(pid), cpu_seconds(pid), time.monotonic() - start
    both = group_before.keys() & group_after.keys()
    group = sum(group_after[p] - group_before[p] for p in both)
    return 100 * (own_after - own_before) / wall, 100 * group / wall, len(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=10.0, help="wait after /health")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--postgres", action="store_true", help="default: SQLite")
    parser.add_argument("serve_args", nargs="*", help="more `lrlab serve` arguments (after --)")
    args = parser.parse_args()

    print(environment_line())
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database()) if args.postgres else None
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="lrlab-idle-"))
        server = lrlab_process(url, Path(tmp) / "data", args.serve_args, port=args.port)
        with server as (proc, base, _):
            time.sleep(args.warmup)  # Ray's start-up settles; not part of the figure
            load = load_average()
            own, group, processes = measure(proc.pid, args.seconds)
    store = "PostgreSQL" if args.postgres else "SQLite"
    command = " ".join(["lrlab serve", *args.serve_args]) + f" ({store}, served at {base})"
    print(f"{command}; idle {args.seconds:g} s after {args.warmup:g} s; load average {load}")
    rows = [
        ["server process", f"{own:.2f}%"],
        [f"process group ({processes} processes: server + Ray)", f"{group:.2f}%"],
    ]
    print(table(["what", "CPU, % of one core"], rows))


if __name__ == "__main__":
    main()
