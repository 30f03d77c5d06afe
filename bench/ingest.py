"""Metric ingest benchmark: the store's bulk path and the HTTP endpoint against a COPY floor.

    .venv/bin/python bench/ingest.py [--points 1000000] [--batch 5000] [--repeats 3]

Creates its own PostgreSQL database (lrlab_bench_<random>, dropped at the end, also on
failure) and measures, in one run and on the same points (5 metric names x N steps, each
batch all names for a step range):

  (c) floor  psycopg 3 binary COPY into a bare table with the same columns and primary key,
             one transaction per batch, rows in key order (as the store sends them);
  (a) store  MetricRepository.write(trial_id, points) per batch, via open_store(url);
  (b) http   POST /trials/{id}/metrics to a `lrlab serve` subprocess, one httpx client
             (keep-alive), client-side JSON encoding (json.dumps per batch) included.

Each repeat writes into a fresh bare table / fresh trials; the order of the three paths
rotates per repeat, and a CHECKPOINT precedes every timed run so that no run pays for the
previous one's dirty pages. Medians over the repeats are reported. After each store run,
10 batches are re-sent (the collision path) and the trial's row count is checked unchanged.
Reads: the median latency of a downsampled 200k-step series via the store and via HTTP,
and a bare SELECT of the same rows as the floor.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench._common import lrlab_server  # noqa: E402
from services.domain.submissions import NewSweep, NewTrial  # noqa: E402
from services.store import Store, open_store  # noqa: E402

NAMES = ("train_loss", "val_loss", "val_accuracy", "lr", "grad_norm")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_TYPES = ["int8", "text", "int8", "float8", "float8"]
RESEND_BATCHES = 10
READ_WARMUPS = 2
TARGETS = {"store": 0.50, "http": 0.25}

Point = tuple[str, int, float, float]
Batch = list[Point]


# -- data -------------------------------------------------------------------------------
def make_batches(points: int, batch: int, seed: int = 7) -> list[Batch]:
    """`points` points, `batch` per batch, each batch every name for a range of steps,
    in the order a training loop logs them (step by step)."""
    if batch % len(NAMES) or points % len(NAMES):
        raise SystemExit(f"--points and --batch must be multiples of {len(NAMES)}")
    rng = random.Random(seed)
    steps = points // len(NAMES)
    per_batch = batch // len(NAMES)
    t0 = 1_764_000_000.0
    out: list[Batch] = []
    current: Batch = []
    for step in range(steps):
        progress = step / steps
        loss = 2.3 * math.exp(-5.0 * progress) + 0.05
        at = t0 + step * 0.0123 + rng.random() * 1e-3
        current.append(("train_loss", step, loss * (1.0 + 0.08 * rng.gauss(0.0, 1.0)), at))
        current.append(("val_loss", step, loss * 1.07 + 0.01 * rng.random(), at))
        current.append(
            ("val_accuracy", step, min(1.0, 0.99 - 0.4 * loss + 0.01 * rng.random()), at)
        )
        current.append(("lr", step, 0.05 * 0.5 * (1.0 + math.cos(math.pi * progress)) + 1e-6, at))
        current.append(("grad_norm", step, rng.lognormvariate(0.0, 0.5) * (0.5 + loss), at))
        if len(current) == batch or step == steps - 1:
            out.append(current)
            current = []
    assert sum(map(len, out)) == points and all(len(b) <= per_batch * len(NAMES) for b in out)
    return out


# -- database ---------------------------------------------------------------------------
def admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(statement)


def checkpoint(conn: psycopg.Connection[Any]) -> None:
    """Flush dirty pages now, so a timed run does not pay for the previous one."""
    conn.execute("CHECKPOINT")


def create_bare(conn: psycopg.Connection[Any], table: str) -> None:
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (trial_id int8 NOT NULL, name text NOT NULL, step int8 NOT NULL, "
            "value float8, recorded_at float8 NOT NULL, "
            "PRIMARY KEY (trial_id, name, step) INCLUDE (value))"
        ).format(sql.Identifier(table))
    )


def count_rows(conn: psycopg.Connection[Any], table: str, trial_id: int) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE trial_id = %s").format(sql.Identifier(table)),
        (trial_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def expect_rows(conn: psycopg.Connection[Any], table: str, trial_id: int, n: int) -> None:
    got = count_rows(conn, table, trial_id)
    if got != n:
        raise RuntimeError(f"{table}: trial {trial_id} has {got} rows, expected {n}")


def store_trial(store: Store, project_id: int, label: str) -> int:
    sweep = store.sweeps.create(
        project_id,
        NewSweep(
            name=f"bench-{label}",
            method="single",
            spec={},
            metric_name="val_loss",
            metric_goal="minimize",
            max_trials=1,
            max_concurrent=1,
        ),
        [NewTrial(params={}, spec={}, max_restarts=0)],
    )
    page = store.trials.list(project_id, sweep.id, limit=1, offset=0)
    return page.items[0].id


# -- server -----------------------------------------------------------------------------
def http_trial(client: httpx.Client) -> int:
    r = client.post("/jobs", json={"task": "digits"})
    r.raise_for_status()
    sweep_id = r.json()["id"]
    r = client.get(f"/sweeps/{sweep_id}/trials")
    r.raise_for_status()
    return int(r.json()["items"][0]["id"])


# -- the three ingest paths -------------------------------------------------------------
def run_floor(
    conn: psycopg.Connection[Any], table: str, trial_id: int, batches: Sequence[Batch]
) -> float:
    # The rows are built before the clock starts: this is the raw COPY cost. They go in key
    # order, as the store sends them; PostgreSQL fills the index ~10% faster that way than
    # in logging order, and the floor should be the faster of the two.
    rows = [sorted((trial_id, *p) for p in b) for b in batches]
    copy_sql = sql.SQL(
        "COPY {} (trial_id, name, step, value, recorded_at) FROM STDIN BINARY"
    ).format(sql.Identifier(table))
    t = time.perf_counter()
    for b in rows:
        with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types(PG_TYPES)
            for row in b:
                copy.write_row(row)
    return time.perf_counter() - t


def run_store(store: Store, project_id: int, trial_id: int, batches: Sequence[Batch]) -> float:
    write = store.metrics.write
    t = time.perf_counter()
    for b in batches:
        write(project_id, trial_id, b)
    return time.perf_counter() - t


def run_http(client: httpx.Client, trial_id: int, batches: Sequence[Batch]) -> float:
    path = f"/trials/{trial_id}/metrics"
    headers = {"content-type": "application/json"}
    t = time.perf_counter()
    for b in batches:
        body = json.dumps(
            {"points": [{"name": n, "step": s, "value": v, "time": at} for n, s, v, at in b]}
        ).encode()
        r = client.post(path, content=body, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:500]}")
    return time.perf_counter() - t


def median_ms(fn: Callable[[], object], n: int) -> tuple[float, int]:
    size = 0
    for _ in range(READ_WARMUPS):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - t) * 1e3)
        size = out if isinstance(out, int) else size
    return statistics.median(samples), size


# -- main -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reads", type=int, default=15, help="timed requests per read path")
    ap.add_argument("--max-points", type=int, default=2_000)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.reads < 1:
        ap.error("--repeats and --reads must be at least 1")

    # SIGTERM unwinds like Ctrl-C, so the database is dropped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    batches = make_batches(args.points, args.batch)
    dbname = f"lrlab_bench_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}"
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    print(f"database {dbname}: {len(batches)} batches of {args.batch} points", file=sys.stderr)
    store: Store | None = None
    try:
        store = open_store(url)
        with (
            tempfile.TemporaryDirectory(prefix="lrlab-bench-") as tmp,
            # API only: the ingest path, without a scheduler and Ray beside it.
            lrlab_server(url, Path(tmp), extra_args=("--no-scheduler",)) as (base, token),
            httpx.Client(
                base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=120.0
            ) as client,
            psycopg.connect(
                f"postgresql://postgres@127.0.0.1:5432/{dbname}", autocommit=True
            ) as pg,
        ):
            report(args, store, client, pg, batches)
    finally:
        if store is not None:
            store.close()
        admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        print(f"dropped {dbname}", file=sys.stderr)
    return 0


def report(
    args: argparse.Namespace,
    store: Store,
    client: httpx.Client,
    pg: psycopg.Connection[Any],
    batches: Sequence[Batch],
) -> None:
    n = args.points
    project = store.projects.create("bench")
    # A token scoped to the store trials' project, for reading them back over HTTP.
    bench_auth = {
        "authorization": f"Bearer {store.projects.issue_token(project.id, 'bench').secret}"
    }
    seconds: dict[str, list[float]] = {"floor": [], "store": [], "http": []}
    resend: list[float] = []
    last: dict[str, Any] = {}
    log = sys.stderr
    for rep in range(args.repeats):
        trial_a = store_trial(store, project.id, f"store-{rep}")
        trial_b = http_trial(client)
        bare = f"bare_{rep}"
        create_bare(pg, bare)
        # Rotate the order so no path always runs first (or last) in a repeat.
        order = ["floor", "store", "http"]
        order = order[rep % 3 :] + order[: rep % 3]
        for path in order:
            checkpoint(pg)
            if path == "floor":
                s = run_floor(pg, bare, trial_a, batches)
                expect_rows(pg, bare, trial_a, n)
            elif path == "store":
                s = run_store(store, project.id, trial_a, batches)
                expect_rows(pg, "metric_points", trial_a, n)
                # The collision path: a client retrying batches that are already stored.
                again = batches[:RESEND_BATCHES]
                before = count_rows(pg, "metric_points", trial_a)
                t = time.perf_counter()
                for b in again:
                    store.metrics.write(project.id, trial_a, b)
                resend.append(time.perf_counter() - t)
                after = count_rows(pg, "metric_points", trial_a)
                print(
                    f"  re-sent {len(again)} batches: rows {before} -> {after}"
                    f" ({'unchanged' if before == after else 'CHANGED'})",
                    file=log,
                )
                if before != after:
                    raise RuntimeError("re-sending batches changed the row count")
            else:
                s = run_http(client, trial_b, batches)
                expect_rows(pg, "metric_points", trial_b, n)
            seconds[path].append(s)
            print(f"repeat {rep + 1} {path:5s} {s:7.2f} s  {n / s:>9,.0f} points/s", file=log)
        last = {"trial": trial_a, "bare": bare}

    med = {k: statistics.median(v) for k, v in seconds.items()}
    resend_pts = sum(len(b) for b in batches[:RESEND_BATCHES])
    floor_rate = n / med["floor"]
    labels = {
        "floor": "(c) floor: binary COPY, bare table",
        "store": "(a) store: MetricRepository.write",
        "http": "(b) HTTP: POST /trials/{id}/metrics, 1 client",
    }
    print()
    print(f"Ingest: {n:,} points, batches of {args.batch:,}, median of {args.repeats} repeats")
    print()
    print("| path | points | seconds | points/s | ratio to floor | target | runs (s) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for key in ("floor", "store", "http"):
        rate = n / med[key]
        target = f">= {TARGETS[key]:.0%}" if key in TARGETS else ""
        runs = ", ".join(f"{s:.2f}" for s in seconds[key])
        print(
            f"| {labels[key]} | {n:,} | {med[key]:.2f} | {rate:,.0f} | {rate / floor_rate:.0%} "
            f"| {target} | {runs} |"
        )
    rs = statistics.median(resend)
    print(
        f"| re-send {RESEND_BATCHES} stored batches (store, collision path) | {resend_pts:,} "
        f"| {rs:.2f} | {resend_pts / rs:,.0f} | {resend_pts / rs / floor_rate:.0%} | | "
        f"{', '.join(f'{s:.2f}' for s in resend)} |"
    )
    print()
    print("Re-send check: the trial's row count was unchanged after every re-send.")

    # -- reads --
    trial, bare = last["trial"], last["bare"]
    pg.execute("VACUUM ANALYZE metric_points")
    pg.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(bare)))

    def store_read() -> int:
        (series,) = store.metrics.read(
            project.id, trial, ["train_loss"], max_points=args.max_points
        )
        assert series.total == n // len(NAMES) and len(series.steps) <= args.max_points
        return len(series.steps)

    def http_read() -> int:
        r = client.get(
            f"/trials/{trial}/metrics",
            params={"name": "train_loss", "max_points": args.max_points},
            headers=bench_auth,
        )
        r.raise_for_status()
        return len(r.content)

    floor_sql = sql.SQL(
        "SELECT step, value FROM {} WHERE trial_id = %s AND name = %s ORDER BY step"
    ).format(sql.Identifier(bare))

    def floor_read() -> int:
        with pg.cursor() as cur:
            cur.execute(floor_sql, (trial, "train_loss"))
            return len(cur.fetchall())

    reads = [
        (
            f"(i) store.metrics.read(max_points={args.max_points})",
            store_read,
        ),
        (
            f"(ii) GET /trials/{{id}}/metrics?name=train_loss&max_points={args.max_points}",
            http_read,
        ),
        ("(iii) floor: bare SELECT step, value ... ORDER BY step, fetchall", floor_read),
    ]
    steps = n // len(NAMES)
    print()
    print(
        f"Reads: one {steps:,}-step series (train_loss), median of {args.reads} requests "
        f"after {READ_WARMUPS} warm-ups"
    )
    print()
    print("| read | median ms | returned |")
    print("|---|---:|---|")
    for label, fn in reads:
        ms, size = median_ms(fn, args.reads)
        what = {
            store_read: f"{size:,} of {steps:,} points",
            http_read: f"{size:,} bytes of JSON",
            floor_read: f"{size:,} rows",
        }[fn]
        print(f"| {label} | {ms:.1f} | {what} |")


if __name__ == "__main__":
    sys.exit(main())
