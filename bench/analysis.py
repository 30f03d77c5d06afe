"""Analysis benchmark: one trial's and a whole sweep's analysis over HTTP, cold and warm.

    .venv/bin/python bench/analysis.py [--trials 100] [--steps 10000] [--eval-every 50]

Creates its own PostgreSQL database (lrlab_bench_<random>, dropped at the end, also on
failure or SIGTERM) and writes, through the store (MetricRepository.write), a sweep of
--trials trials x --steps steps x 5 series: train_loss, lr and grad_norm at every step,
val_loss and val_accuracy every --eval-every steps (50, the TrialSpec default; 1 puts
every series at every step, the worst case). The curves come from a numpy model of each
trial's optimizer, batch size and lr against an optimum that scales with batch size (sqrt
for adam, linear for sgd): healthy, slow, overfitting, unstable and diverging runs. Every
trial then ends (succeeded, or pruned when it diverged).

Timed against `lrlab serve --no-scheduler` in a subprocess with the live analyzer off
(LRLAB_RUN_ANALYZER=false: it would fill the cache behind the cold runs), one keep-alive
httpx client. --repeats rounds, each running every path in turn (so a change of load hits
them all alike); medians over the rounds:
  trial cold   GET /trials/{id}/analysis with the trial's cached analysis cleared first;
  trial warm   the same with the cached analysis in place (the request before kept it,
               through the same record() the live analyzer uses);
  sweep cold   GET /sweeps/{id}/analysis with every cached analysis cleared: each trial
               is analysed on demand (the answer must say computed == trials);
  sweep warm   the same right after, every diagnosis cached (cached == trials);
  floors       all the sweep's points out of PostgreSQL with no analysis: a bare SELECT
               (fetchall), packed binary columns in one GROUP BY query, packed columns one
               query per series (as the store reads them); and one trial's bare SELECT.
Then, in process, the per-trial split of a cold analysis: reads, diagnose(), record().
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402

from bench._common import (  # noqa: E402
    environment_line,
    load_average,
    lrlab_server,
    pg_database,
    table,
)
from services.analysis.trial_analysis import ANALYZED, analysed_series, record  # noqa: E402
from services.analyzer import RunContext, diagnose  # noqa: E402
from services.domain.records import TrialStatus  # noqa: E402
from services.domain.submissions import NewSweep, NewTrial  # noqa: E402
from services.specs import TrialSpec  # noqa: E402
from services.store import Store, open_store  # noqa: E402

TARGETS = {"sweep": 2.0, "trial": 0.100}  # seconds
LIMIT = 100_000  # points per series a finished trial's analysis reads (max_series_points)
PACKED = (
    "string_agg(int8send(step), ''::bytea), "
    "string_agg(float8send(COALESCE(value, 'NaN')), ''::bytea)"
)
OPTIMIZERS = {"adam": (3e-3, 0.5), "sgd": (3e-2, 1.0)}  # best lr at batch 32, scaling slope
BATCH_SIZES = (16, 32, 64, 128, 256)
EVALUATED = ("val_loss", "val_accuracy")  # logged every eval_every steps


# -- data -------------------------------------------------------------------------------
def sweep_grid(trials: int) -> list[tuple[str, int, float]]:
    """(optimizer, batch size, lr) for each trial: an lr grid per (optimizer, batch)."""
    combos = [(o, b) for o in OPTIMIZERS for b in BATCH_SIZES]
    per = max(1, math.ceil(trials / len(combos)))
    out = []
    for opt, bs in combos:
        base = OPTIMIZERS[opt][0]
        for lr in np.logspace(math.log10(base) - 2.5, math.log10(base) + 2.0, per):
            out.append((opt, bs, float(f"{lr:.2g}")))
    return out[:trials]


def curves(opt: str, bs: int, lr: float, steps: int, seed: int) -> dict[str, np.ndarray]:
    """The 5 series of one trial at every step. log_r (how far lr is from the optimum for
    this optimizer and batch size, in decades) decides the kind of run."""
    rng = np.random.default_rng(seed)
    base, slope = OPTIMIZERS[opt]
    log_r = math.log10(lr / (base * (bs / 32) ** slope))
    t = np.arange(steps, dtype=float)
    speed = min(10.0**log_r, 1.0) ** 0.5
    tau = steps / 8 / speed  # far below the optimum: far too slow for the budget
    floor = 0.05 + 0.1 * log_r**2
    clean = (2.3 - floor) * np.exp(-t / tau) + floor
    # Batch noise grows as the batch shrinks and as the lr passes its optimum.
    rel = 0.04 * math.sqrt(32 / bs) * (1 + 4 * max(0.0, log_r))
    train = clean * np.exp(rng.normal(0.0, rel, steps))
    val = clean * 1.04 + rng.normal(0.0, 0.002, steps)
    if 0.25 < log_r < 0.9:  # a little above the optimum: fast, then overfits
        onset = int(steps * rng.uniform(0.25, 0.45))
        rise = np.clip((t - onset) / steps, 0.0, None)
        val = val + 0.8 * rise
        train = train * np.exp(-0.6 * rise)
    grad = (1.0 + 2.0 * np.exp(-t / tau)) * np.exp(rng.normal(0.0, 0.25, steps))
    if log_r > 1.2:  # blows up at a random step, then inf and NaN
        start = int(steps * rng.uniform(0.05, 0.4))
        blow = np.exp(np.clip((t - start) / (steps / 200), 0.0, 700.0))
        train, val, grad = train * blow, val * blow, grad * blow
        dead = start + int(steps / 20)
        train[dead:], val[dead:], grad[dead:] = np.inf, np.nan, np.inf
    acc = np.clip(1.0 - val / 2.5, 0.0, 1.0)
    return {
        "train_loss": train,
        "val_loss": val,
        "val_accuracy": acc,
        "lr": np.full(steps, lr),
        "grad_norm": grad,
    }


def store_points(trials: int, steps: int, eval_every: int) -> int:
    evals = len({*range(eval_every - 1, steps, eval_every), steps - 1})
    return trials * (3 * steps + len(EVALUATED) * evals)


def spec_of(opt: str, bs: int, lr: float, steps: int) -> dict[str, Any]:
    spec = TrialSpec.model_validate(
        {
            "task": {"name": "digits"},
            "optimizer": {"name": opt, "lr": lr},
            "batch_size": bs,
            "budget": {"max_steps": steps},
        }
    )
    return spec.model_dump(mode="json")


def build_sweep(
    store: Store, project_id: int, trials: int, steps: int, eval_every: int = 1
) -> tuple[int, list[int]]:
    """The sweep, its trials' points written through the store, every trial ended."""
    grid = sweep_grid(trials)
    sweep = store.sweeps.create(
        project_id,
        NewSweep(
            name="bench-analysis",
            method="grid",
            spec={},
            metric_name="val_loss",
            metric_goal="minimize",
            max_trials=None,
            max_concurrent=len(grid),
        ),
        [
            NewTrial(
                params={"optimizer": o, "batch_size": b, "optimizer.lr": lr},
                spec=spec_of(o, b, lr, steps),
                max_restarts=0,
            )
            for o, b, lr in grid
        ],
    )
    page = store.trials.list(project_id, sweep.id, limit=len(grid), offset=0)
    ids = [t.id for t in page.items]
    t0 = time.perf_counter()
    diverged = set()
    # Evaluations at the end of every eval_every steps, and at the last step.
    evals = sorted({*range(eval_every - 1, steps, eval_every), steps - 1})
    for i, (trial_id, (opt, bs, lr)) in enumerate(zip(ids, grid, strict=True)):
        series = curves(opt, bs, lr, steps, seed=i)
        if not np.isfinite(series["train_loss"][-1]):
            diverged.add(trial_id)
        at = 1_764_000_000.0
        points = [
            (name, step, float(values[step]), at + step * 0.01)
            for name, values in series.items()
            for step in (evals if name in EVALUATED else range(steps))
        ]
        store.metrics.write(project_id, trial_id, points)
    written = time.perf_counter() - t0
    print(
        f"wrote {store_points(len(ids), steps, eval_every):,} points in {written:.1f} s",
        file=sys.stderr,
    )
    for _ in ids:
        claimed = store.trial_states.claim_next("bench", lambda _: True)
        assert claimed is not None
        status = TrialStatus.PRUNED if claimed.id in diverged else TrialStatus.SUCCEEDED
        store.trial_states.finish(claimed.id, claimed.attempt, status, last_step=steps - 1)
    return sweep.id, ids


# -- timing -----------------------------------------------------------------------------
def timed(
    fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None
) -> list[float]:
    out = []
    for _ in range(repeats):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def get_json(client: httpx.Client, path: str) -> dict[str, Any]:
    r = client.get(path)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:500]}")
    body: dict[str, Any] = r.json()
    return body


def clear_cache(pg: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    pg.execute(
        "UPDATE trials SET analysis = NULL, analyzed_step = NULL WHERE id = ANY(%s)", (list(ids),)
    )


def floors(pg: psycopg.Connection[Any], ids: Sequence[int]) -> dict[str, Callable[[], int]]:
    """Ways to get all the sweep's points (or one trial's) out of PostgreSQL, no analysis."""
    ids = list(ids)

    def all_bare() -> int:
        with pg.cursor() as cur:
            cur.execute(
                "SELECT trial_id, name, step, value FROM metric_points WHERE trial_id = ANY(%s)",
                (ids,),
            )
            return len(cur.fetchall())

    def all_grouped() -> int:
        with pg.cursor(binary=True) as cur:
            cur.execute(
                f"SELECT trial_id, name, {PACKED} FROM metric_points WHERE trial_id = ANY(%s) "
                "GROUP BY trial_id, name",
                (ids,),
            )
            return sum(len(r[2]) // 8 for r in cur.fetchall())

    def per_series() -> int:
        n = 0
        with pg.cursor(binary=True) as cur:
            for trial_id in ids:
                for name in ANALYZED:
                    cur.execute(
                        f"SELECT {PACKED} FROM metric_points WHERE trial_id = %s AND name = %s",
                        (trial_id, name),
                    )
                    row = cur.fetchone()
                    n += len(row[0] or b"") // 8 if row else 0
        return n

    def one_bare() -> int:
        with pg.cursor() as cur:
            cur.execute("SELECT name, step, value FROM metric_points WHERE trial_id = %s", ids[:1])
            return len(cur.fetchall())

    return {
        "all_bare": all_bare,
        "all_grouped": all_grouped,
        "per_series": per_series,
        "one_bare": one_bare,
    }


def breakdown(store: Store, ids: Sequence[int], project_id: int) -> dict[str, float]:
    """Per trial, in this process, what a cold analysis spends: reading its series,
    diagnose() alone, and record() (findings and cached diagnosis). Medians in seconds of
    wall time, and ("... cpu") of this thread's CPU time: the Python work that holds the
    GIL, apart from the database's."""
    parts: dict[str, list[float]] = {}
    for trial_id in ids:
        trial = store.trials.get(project_id, trial_id)
        marks = [(time.perf_counter(), time.thread_time())]
        series = analysed_series(store, trial, LIMIT)
        marks.append((time.perf_counter(), time.thread_time()))
        total = int(series["train_loss"][0][-1]) + 1
        diagnosis = diagnose(series, RunContext.from_spec(trial.spec, total_steps=total))
        marks.append((time.perf_counter(), time.thread_time()))
        record(store, trial, diagnosis)
        marks.append((time.perf_counter(), time.thread_time()))
        steps = ("read", "diagnose", "record")
        for name, (a, b) in zip(steps, itertools.pairwise(marks), strict=True):
            parts.setdefault(name, []).append(b[0] - a[0])
            parts.setdefault(f"{name} cpu", []).append(b[1] - a[1])
    return {k: statistics.median(v) for k, v in parts.items()}


def fmt_runs(xs: Sequence[float]) -> str:
    return ", ".join(f"{x * 1e3:.0f}" for x in xs)


def measure(
    args: argparse.Namespace,
    client: httpx.Client,
    pg: psycopg.Connection[Any],
    sweep_id: int,
    ids: Sequence[int],
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Every path, repeat by repeat (so that a change of load hits them all alike)."""
    trial_path, sweep_path = f"/trials/{ids[0]}/analysis", f"/sweeps/{sweep_id}/analysis"
    last: dict[str, Any] = {}

    def sweep(expect: str) -> None:
        body = get_json(client, sweep_path)
        if body["diagnoses"][expect] != len(ids):
            raise RuntimeError(f"expected {expect} == {len(ids)}: {body['diagnoses']}")
        last.update(body)

    runs: dict[str, list[float]] = {}
    floor_fns = floors(pg, ids)
    per_repeat = max(1, args.reads // args.repeats)
    for _ in range(args.repeats):
        batches = {
            "trial cold": timed(
                lambda: get_json(client, trial_path), per_repeat, lambda: clear_cache(pg, ids[:1])
            ),
            "trial warm": timed(lambda: get_json(client, trial_path), per_repeat),
            "sweep cold": timed(lambda: sweep("computed"), 1, lambda: clear_cache(pg, ids)),
            "sweep warm": timed(lambda: sweep("cached"), per_repeat),
            **{f"floor {name}": timed(fn, 1) for name, fn in floor_fns.items()},
        }
        for key, values in batches.items():
            runs.setdefault(key, []).extend(values)
    return runs, last


def report(args: argparse.Namespace, store: Store, base: str, pg_conninfo: str) -> None:
    project = store.projects.create("bench")
    token = store.projects.issue_token(project.id, "bench").secret
    sweep_id, ids = build_sweep(store, project.id, args.trials, args.steps, args.eval_every)
    with psycopg.connect(pg_conninfo, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")
        # Read every row once, so that the first timed run does not pay for the disk alone.
        floors(pg, ids)["all_grouped"]()
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600.0) as client:
            get_json(client, f"/trials/{ids[0]}/analysis")  # warm-up: imports, pool
            load_start = load_average()
            runs, last = measure(args, client, pg, sweep_id, ids)
            load_end = load_average()
            clear_cache(pg, ids[: args.breakdown])
            parts = breakdown(store, ids[: args.breakdown], project.id)
    med = {k: statistics.median(v) for k, v in runs.items()}
    points = store_points(args.trials, args.steps, args.eval_every)
    labels = {
        "trial cold": "GET /trials/{id}/analysis, cold (no cached analysis)",
        "trial warm": "GET /trials/{id}/analysis, warm (cached)",
        "sweep cold": f"GET /sweeps/{{id}}/analysis, cold ({args.trials} trials analysed)",
        "sweep warm": "GET /sweeps/{id}/analysis, warm (all diagnoses cached)",
        "floor all_bare": f"floor: bare SELECT of all {points:,} points, fetchall",
        "floor all_grouped": "floor: the same as packed binary columns, one GROUP BY query",
        "floor per_series": "floor: the same, packed, one query per series (as the store)",
        "floor one_bare": f"floor: bare SELECT of one trial's {points // args.trials:,} points",
    }
    rows = []
    for key, label in labels.items():
        goal = TARGETS.get(key.split()[0]) if not key.startswith("floor") else None
        verdict = ""
        if goal is not None:
            verdict = f"< {goal * 1e3:.0f} ms: {'met' if med[key] < goal else 'MISSED'}"
        rows.append((label, f"{med[key] * 1e3:.0f}", verdict, fmt_runs(runs[key])))
    print()
    print(
        f"Analysis: {args.trials} trials x {args.steps:,} steps x 5 series (val_loss and "
        f"val_accuracy every {args.eval_every} steps) = {points:,} points; "
        f"{args.repeats} repeats, each: every path in turn"
    )
    print(f"{environment_line()}; load average {load_start} before timing, {load_end} after")
    print()
    print(table(["what", "median ms", "target", "runs (ms)"], rows))
    print()
    floor = min(med["floor all_grouped"], med["floor per_series"])
    ratios = [
        ("sweep cold / the faster packed floor", med["sweep cold"] / floor),
        ("sweep cold / bare SELECT of all points", med["sweep cold"] / med["floor all_bare"]),
        ("sweep warm / the faster packed floor", med["sweep warm"] / floor),
        ("trial cold / bare SELECT of its points", med["trial cold"] / med["floor one_bare"]),
    ]
    print(table(["ratio", "value"], [(name, f"{r:.2f}") for name, r in ratios]))
    print()
    print(
        f"Per trial, in process, median of the first {args.breakdown}: read 5 series "
        f"{parts['read'] * 1e3:.1f} ms, diagnose() {parts['diagnose'] * 1e3:.1f} ms, "
        f"record() {parts['record'] * 1e3:.1f} ms; CPU of this thread: read "
        f"{parts['read cpu'] * 1e3:.1f} ms, diagnose() {parts['diagnose cpu'] * 1e3:.1f} ms, "
        f"record() {parts['record cpu'] * 1e3:.1f} ms"
    )
    print(f"finding counts: {last.get('finding_counts')}")
    print(f"summary: {last.get('summary')}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--eval-every", type=int, default=50, help="steps between val points")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of every path")
    ap.add_argument("--reads", type=int, default=9, help="trial and warm sweep runs in all")
    ap.add_argument("--breakdown", type=int, default=10, help="trials in the in-process split")
    args = ap.parse_args(argv)
    if min(args.trials, args.repeats, args.reads, args.eval_every) < 1 or args.steps < 100:
        ap.error("--trials, --eval-every, --repeats and --reads must be >= 1, --steps >= 100")
    # SIGTERM unwinds like Ctrl-C, so the database is dropped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["LRLAB_RUN_ANALYZER"] = "false"  # the server's live analyzer stays off
    print(
        f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load {load_average()}", file=sys.stderr
    )
    with pg_database() as url, tempfile.TemporaryDirectory(prefix="lrlab-bench-") as tmp:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        store = open_store(url)
        try:
            with lrlab_server(url, Path(tmp), extra_args=("--no-scheduler",)) as (base, _):
                report(args, store, base, conninfo)
        finally:
            store.close()
    print(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
