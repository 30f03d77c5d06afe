"""Time to first metric: POST /jobs until its first point is readable over GET.

    .venv/bin/python bench/first_metric.py [--jobs 7] [--poll-ms 10]

Starts `lrlab serve` as a subprocess (its own PostgreSQL database, created for the run and
dropped at the end, also on failure; a temp --data-dir; --num-cpus 2) and waits for
/health with a bounded loop. Warm-up: two jobs at once (so both Ray workers have run a
trial and imported torch), each cancelled once its first point is readable.

Then, one at a time, --jobs jobs (digits, default spec, budget max_steps 1,000,000):
the clock starts before POST /jobs; the client reads the trial's id from
GET /sweeps/{id}/trials and polls GET /trials/{id}/metrics every --poll-ms until a series
has a point; that is the figure. The job is then cancelled (POST /trials/{id}/cancel) and
the next one waits until it is terminal, so the measured job has the CPU to itself.

Breakdown per job (server and client share this machine's clock):
  submit      client POST start -> the trial's "queued" event (request, validation, insert)
  pickup      "queued" -> "running" event (the scheduler's wake-up, claim)
  to step 0   "running" -> the time stamped on the first metric point (Ray task dispatch,
              worker setup, store lease, building task + optimizer, step 0)
  to readable first point's time -> the client's first non-empty read (the runner hands
              step 0 to the sink on its own and the sink writes an attempt's first
              points at once; then the COPY and the poll interval)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._common import (  # noqa: E402
    environment_line,
    load_average,
    lrlab_server,
    pg_database,
    table,
)

TERMINAL = {"succeeded", "failed", "pruned", "cancelled"}
JOB = {"task": "digits", "budget": {"max_steps": 1_000_000}}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def submit(client: httpx.Client) -> int:
    r = client.post("/jobs", json=JOB)
    r.raise_for_status()
    sweep_id = r.json()["id"]
    r = client.get(f"/sweeps/{sweep_id}/trials")
    r.raise_for_status()
    (trial,) = r.json()["items"]
    return int(trial["id"])


def first_point(client: httpx.Client, trial_id: int, poll: float, timeout: float) -> dict[str, Any]:
    """Poll until a series has a point; returns the response body and the poll count."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        polls += 1
        r = client.get(f"/trials/{trial_id}/metrics")
        r.raise_for_status()
        body = r.json()
        if any(s["steps"] for s in body["series"]):
            body["polls"] = polls
            return dict(body)
        if time.monotonic() > deadline:
            status = client.get(f"/trials/{trial_id}").json()
            raise RuntimeError(f"trial {trial_id}: no metric point in {timeout:.0f} s: {status}")
        time.sleep(poll)


def cancel_and_wait(client: httpx.Client, trial_id: int, timeout: float = 60.0) -> dict[str, Any]:
    client.post(f"/trials/{trial_id}/cancel").raise_for_status()
    deadline = time.monotonic() + timeout
    while True:
        trial = client.get(f"/trials/{trial_id}").json()
        if trial["status"] in TERMINAL:
            return dict(trial)
        if time.monotonic() > deadline:
            raise RuntimeError(f"trial {trial_id} not terminal {timeout:.0f} s after cancel")
        time.sleep(0.1)


def measure(client: httpx.Client, poll: float, timeout: float) -> dict[str, Any]:
    wall0 = time.time()
    t0 = time.perf_counter()
    trial_id = submit(client)
    body = first_point(client, trial_id, poll, timeout)
    total = time.perf_counter() - t0
    seen = wall0 + total
    trial = cancel_and_wait(client, trial_id)
    events = client.get(f"/trials/{trial_id}/events").json()
    queued = next(_ts(e["at"]) for e in events if e["status"] == "queued")
    running = next(_ts(e["at"]) for e in events if e["status"] == "running")
    first = min(s["times"][0] for s in body["series"] if s["times"])
    return {
        "trial": trial_id,
        "total": total,
        "submit": queued - wall0,
        "pickup": running - queued,
        "to_step0": first - running,
        "to_readable": seen - first,
        "polls": body["polls"],
        "worker": (trial.get("worker") or "?").rsplit(":", 1)[-1],
        "status": trial["status"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=7, help="measured jobs (median over them)")
    p.add_argument("--poll-ms", type=float, default=10.0)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120.0, help="per job, to its first point")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    if args.jobs < 1 or args.poll_ms <= 0:
        p.error("--jobs must be >= 1 and --poll-ms > 0")
    poll = args.poll_ms / 1e3

    print(f"# first metric: {environment_line()}\n", flush=True)
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lrlab-first-")))
        url = stack.enter_context(pg_database(args.pg_admin_url, "lrlab_bench_first"))
        t_start = time.perf_counter()
        base, token = stack.enter_context(
            lrlab_server(url, data_dir / "data", ["--num-cpus", str(args.num_cpus)])
        )
        print(f"lrlab serve healthy in {time.perf_counter() - t_start:.1f} s", file=sys.stderr)
        client = stack.enter_context(
            httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30)
        )

        # Warm-up: two jobs at once, so each of the two Ray workers has trained once.
        t_warm = time.perf_counter()
        warm = [submit(client) for _ in range(args.num_cpus)]
        for trial_id in warm:
            first_point(client, trial_id, poll, timeout=300)
        for trial_id in warm:
            cancel_and_wait(client, trial_id)
        print(f"warm-up done in {time.perf_counter() - t_warm:.1f} s", file=sys.stderr)

        runs = []
        for i in range(args.jobs):
            runs.append(measure(client, poll, args.timeout))
            r = runs[-1]
            print(
                f"job {i + 1}/{args.jobs}: {r['total'] * 1e3:.0f} ms (worker {r['worker']}, "
                f"{r['status']}) load {load_average()}",
                file=sys.stderr,
                flush=True,
            )

    keys = ("total", "submit", "pickup", "to_step0", "to_readable")
    rows = [
        [
            str(i + 1),
            *(f"{r[k] * 1e3:.0f}" for k in keys),
            str(r["polls"]),
            r["worker"],
        ]
        for i, r in enumerate(runs)
    ]
    medians = [f"**{statistics.median(r[k] for r in runs) * 1e3:.0f}**" for k in keys]
    rows.append(["**median**", *medians, "", ""])
    print(
        f"POST /jobs -> first point readable over GET /trials/{{id}}/metrics (poll every "
        f"{args.poll_ms:g} ms), lrlab serve on PostgreSQL, --num-cpus {args.num_cpus}, "
        f"warm Ray; {args.jobs} jobs, one at a time\n"
    )
    print(
        table(
            [
                "job",
                "total ms",
                "submit ms",
                "pickup ms",
                "to step 0 ms",
                "to readable ms",
                "GETs",
                "worker pid",
            ],
            rows,
        )
    )
    print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
