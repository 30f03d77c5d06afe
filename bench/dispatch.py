"""Dispatch: 100 trials through lrlab's scheduler + Ray launcher, against Ray Tune.

    .venv/bin/python bench/dispatch.py [--trials 100] [--repeats 2]
        [--intervals 0.25,0.05] [--trial-seconds 0.5] [--parts a,b,c]

One `ray.init(num_cpus=2)` for the whole run, PostgreSQL store in a database created for
the run (dropped at the end, also on failure). Every trial asks for 1 CPU, so two run at
a time.

  (a) trivial  100 trials of digits (MLP 64-128-10, Adam 1e-3, batch 32), budget
               max_steps 5, eval_every 5: submit_sweep of a grid over seed 0..99, then the
               Scheduler (its background loop, `Scheduler.start(interval)`, woken once after
               the submit, as `lrlab serve` does) over a RayLauncher. Timed from before
               submit_sweep to the moment every trial of the sweep is terminal in the store
               (polled every 10 ms); then checked: all succeeded, and 5 train_loss + 1
               val_loss points stored per trial. A 4-trial warm-up sweep runs before each
               timed sweep, so both Ray workers exist with torch imported.
  (b) Ray Tune the same 100 trainings (a function trainable: sklearn digits parsed once per
               process and split as the task does it, the same MLP, Adam, 5 steps, one
               evaluation, one tune.report), Tuner with reuse_actors=True,
               max_concurrent_trials=2, a grid of 100, RunConfig(storage_path=<tmp>,
               verbose=0, callbacks=[]), no checkpoints,
               TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1 (TUNE_RESULT_BUFFER_LENGTH stays at its
               default of 1: one report per trial). Timed around Tuner(...).fit() (so its
               actors' start-up is in, shown apart as "startup"); checked: 100 results, no
               errors, and how many trainable processes ran them (2: actors reused).
  (c) 0.5 s    trials that each train ~--trial-seconds. Before Ray starts, each system's
               step count is calibrated in this process (1 thread; trial time at 200 and
               800 steps, a line through them, then the median of 5 at the chosen count):
               lrlab's runner with its PostgreSQL sink and checkpoints (task build + steps +
               final flush), and the bare loop of Ray Tune's trainable (data + steps). Then
               100 such trials through lrlab (first tick interval) and through Ray Tune,
               each against its ideal n x t / 2 CPUs (t = its calibrated trial time). Also
               measured first: two bare trials at once in two processes, i.e. how far this
               machine itself is from scaling perfectly to 2 CPUs.

lrlab is measured at each scheduler tick interval in --intervals (0.25 s is lrlab serve's
default). Dispatch is event-driven (an ended attempt wakes the scheduler at once), so the
interval paces only the scheduler's housekeeping and both should measure the same.
Repeats alternate the order of lrlab and Ray Tune; medians are reported.
"""

from __future__ import annotations

import os

# Read by Ray Tune when it builds its default callbacks: set before anything imports it.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench._common import environment_line, load_average, pg_database, table  # noqa: E402
from services.scheduling.scheduler import Scheduler  # noqa: E402
from services.settings import Settings  # noqa: E402
from services.specs import SweepSpec, TrialSpec  # noqa: E402
from services.store import Store, open_store  # noqa: E402
from services.sweeps.submit import submit_sweep  # noqa: E402

TERMINAL = ("succeeded", "failed", "pruned", "cancelled")
LR = 1e-3
BATCH = 32
HIDDEN = 128
TARGET_TRIVIAL = 1.0  # lrlab wall / Ray Tune wall
EVAL_EVERY_C = 50


def base_spec(max_steps: int, eval_every: int) -> dict[str, Any]:
    return {
        "task": {"name": "digits", "model": "mlp", "hidden": [HIDDEN]},
        "optimizer": {"name": "adam", "lr": LR},
        "batch_size": BATCH,
        "budget": {"max_steps": max_steps},
        "eval_every": eval_every,
        "max_restarts": 0,
    }


# -- lrlab ------------------------------------------------------------------------------
@dataclass
class Run:
    """One timed batch of trials, lrlab's or Ray Tune's."""

    wall: float  # submit (lrlab) / Tuner.fit() (Tune) -> every trial done
    startup: float  # -> the first trial has started (lrlab: claimed; Tune: trainable entered)
    per_trial: float  # mean per trial: lrlab claim -> finish; Tune inside the trainable
    note: str = ""


class Lrlab:
    def __init__(self, store: Store, url: str, checkpoint_root: Path) -> None:
        from workers.ray_launcher import RayLauncher

        self.store = store
        self.launcher = RayLauncher()  # ray is initialized already: it joins that instance
        self.scheduler = Scheduler(
            store,
            self.launcher,
            database_url=url,
            checkpoint_root=checkpoint_root,
            lease_seconds=60,
        )
        project = store.projects.create("bench")
        self.project_id = project.id
        self.interval: float | None = None
        self._sweeps = 0

    def use_interval(self, interval: float) -> None:
        if self.interval != interval:
            self.scheduler.stop(timeout=30)
            self.scheduler.start(interval)
            self.interval = interval

    def sweep(self, base: dict[str, Any], seeds: range, timeout: float) -> tuple[float, float, int]:
        self._sweeps += 1
        spec = SweepSpec.model_validate(
            {
                "name": f"bench-{self._sweeps}",
                "base": base,
                "space": {"seed": list(seeds)},
                "max_concurrent": 2,
            }
        )
        wall0 = time.time()
        t0 = time.perf_counter()
        sweep = submit_sweep(self.store, Settings(), self.project_id, spec)
        self.scheduler.wake()
        self._wait_terminal(sweep.id, len(seeds), t0 + timeout)
        return time.perf_counter() - t0, wall0, sweep.id

    def _wait_terminal(self, sweep_id: int, n: int, deadline: float) -> None:
        query = text("SELECT count(*) FROM trials WHERE sweep_id = :s AND status IN :terminal")
        query = query.bindparams(_expanding_terminal())
        while True:
            with self.store.db.session() as s:
                done = s.execute(query, {"s": sweep_id, "terminal": TERMINAL}).scalar_one()
            if done >= n:
                return
            if time.perf_counter() > deadline:
                raise RuntimeError(f"sweep {sweep_id}: {done}/{n} trials terminal at timeout")
            time.sleep(0.01)

    def check(self, sweep_id: int, n: int, steps: int, evals: int) -> tuple[float, float]:
        """Every trial succeeded with all its points stored; per-trial times from the store."""
        with self.store.db.session() as s:
            statuses = dict(
                s.execute(
                    text("SELECT status, count(*) FROM trials WHERE sweep_id = :s GROUP BY status"),
                    {"s": sweep_id},
                ).all()
            )
            if statuses != {"succeeded": n}:
                errors = s.execute(
                    text("SELECT error FROM trials WHERE sweep_id = :s AND error IS NOT NULL"),
                    {"s": sweep_id},
                ).scalars()
                raise RuntimeError(f"sweep {sweep_id}: {statuses}; errors: {list(errors)[:3]}")
            counts = dict(
                s.execute(
                    text(
                        "SELECT m.name, count(*) FROM metric_points m JOIN trials t "
                        "ON t.id = m.trial_id WHERE t.sweep_id = :s "
                        "AND m.name IN ('train_loss', 'val_loss') GROUP BY m.name"
                    ),
                    {"s": sweep_id},
                ).all()
            )
            want = {"train_loss": n * steps, "val_loss": n * evals}
            if counts != want:
                raise RuntimeError(f"sweep {sweep_id}: stored {counts}, expected {want}")
            first_claim, in_flight = s.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM min(started_at)), "
                    "avg(EXTRACT(EPOCH FROM finished_at - started_at)) FROM trials "
                    "WHERE sweep_id = :s"
                ),
                {"s": sweep_id},
            ).one()
        return float(first_claim), float(in_flight)

    def warm_up(self, base: dict[str, Any]) -> None:
        _, _, sweep_id = self.sweep(base, range(1000, 1004), timeout=300)
        self.check(sweep_id, 4, base["budget"]["max_steps"], 1)

    def run(self, base: dict[str, Any], n: int, evals: int, timeout: float) -> Run:
        """A warm-up sweep, then the timed one (seeds 0..n-1), checked."""
        self.warm_up({**base, "budget": {"max_steps": 5}, "eval_every": 5})
        wall, wall0, sweep_id = self.sweep(base, range(n), timeout)
        first_claim, in_flight = self.check(sweep_id, n, base["budget"]["max_steps"], evals)
        return Run(wall, first_claim - wall0, in_flight)

    def close(self) -> None:
        self.scheduler.stop(timeout=30)
        self.launcher.close()
        deadline = time.monotonic() + 30
        while self.launcher.running() and time.monotonic() < deadline:
            self.launcher.poll()
            time.sleep(0.05)


def _expanding_terminal() -> Any:
    from sqlalchemy import bindparam

    return bindparam("terminal", expanding=True)


# -- Ray Tune ---------------------------------------------------------------------------
# The bundled digits, parsed once per process as lrlab's digits task does (a reused actor
# runs trial after trial). A plain dict, not functools.cache: the trainable lives in
# __main__, so Ray pickles it by value, and this dict with it, once per actor.
_BUNDLED: dict[str, Any] = {}


def _digits(seed: int) -> tuple[Any, Any, Any, Any]:
    import torch
    from sklearn.model_selection import train_test_split

    if not _BUNDLED:
        from sklearn.datasets import load_digits

        data = load_digits()
        _BUNDLED.update(x=data.data, y=data.target)
    x, y = _BUNDLED["x"], _BUNDLED["y"]
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    std[std == 0] = 1.0
    return (
        torch.tensor((x_tr - mean) / std, dtype=torch.float32),
        torch.tensor(y_tr, dtype=torch.long),
        torch.tensor((x_va - mean) / std, dtype=torch.float32),
        torch.tensor(y_va, dtype=torch.long),
    )


def bare_training(seed: int, steps: int, eval_every: int) -> dict[str, float]:
    """The digits training of one trial, hand-written: what a Ray Tune trainable runs."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.set_num_threads(1)  # reused actors keep an old setting otherwise
    x_tr, y_tr, x_va, y_va = _digits(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    n, step, losses = len(x_tr), 0, []
    val_loss = float("nan")
    while step < steps:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, BATCH):
            if step >= steps:
                break
            index = order[start : start + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_tr[index]), y_tr[index])
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % eval_every == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    val_loss = float(F.cross_entropy(model(x_va), y_va))
                model.train()
    return {"train_loss": losses[-1], "val_loss": val_loss}


def tune_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    started = time.time()  # this machine's clock: when Ray Tune got the trial going
    result = bare_training(config["seed"], config["steps"], config["eval_every"])
    tune.report({**result, "started": started, "ended": time.time()})


def run_tune(n: int, steps: int, eval_every: int, storage: Path, name: str) -> Run:
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(tune_trainable, {"cpu": 1}),
        param_space={
            "seed": tune.grid_search(list(range(n))),
            "steps": steps,
            "eval_every": eval_every,
        },
        tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            verbose=0,
            callbacks=[],
            log_to_file=False,
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
        ),
    )
    wall0 = time.time()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # its experiment banner is not our table
        results = tuner.fit()
    wall = time.perf_counter() - t0
    if results.errors or len(results) != n:
        raise RuntimeError(f"Ray Tune: {len(results)} results, errors: {results.errors[:3]}")
    metrics = [r.metrics for r in results]
    if any("val_loss" not in m for m in metrics):
        raise RuntimeError("Ray Tune: a trial reported no val_loss")
    pids = len({m["pid"] for m in metrics})  # 2 when the two actors were reused throughout
    return Run(
        wall=wall,
        startup=min(m["started"] for m in metrics) - wall0,
        per_trial=statistics.mean(m["ended"] - m["started"] for m in metrics),
        note=f"{pids} trainable processes",
    )


# -- calibration ------------------------------------------------------------------------
def runner_seconds(store: Store, steps: int, eval_every: int) -> float:
    """Wall time of workers.runner.train for one trial here (1 thread, a real sink)."""
    import torch

    from bench._common import new_trial
    from workers.checkpoints import CheckpointStore
    from workers.runner import train
    from workers.sink import MetricSink

    torch.set_num_threads(1)
    spec = TrialSpec.model_validate({**base_spec(steps, eval_every), "seed": 0})
    trial = store.trial_states.get(new_trial(store, "calibration", spec.model_dump(mode="json")))
    assert trial is not None

    class Control:
        stop_reason: str | None = None
        last_step: int | None = None

    with tempfile.TemporaryDirectory() as ckpt:
        sink = MetricSink(lambda rows: store.metrics.write(trial.project_id, trial.id, rows))
        t0 = time.perf_counter()
        train(spec, sink=sink, checkpoints=CheckpointStore(Path(ckpt)), control=Control())
        sink.close()
        return time.perf_counter() - t0


def calibrate(
    seconds: float, measure: Callable[[int], float], repeats: int = 5
) -> tuple[int, float]:
    """Steps for a ~`seconds` trial: medians at 200 and 800 steps, a line through them;
    returns (steps, the median time of `repeats` trials of that many steps)."""
    measure(50)  # warm
    lo, hi = 200, 800
    t_lo = statistics.median(measure(lo) for _ in range(repeats))
    t_hi = statistics.median(measure(hi) for _ in range(repeats))
    per_step = (t_hi - t_lo) / (hi - lo)
    fixed = t_lo - per_step * lo
    steps = max(1, round((seconds - fixed) / per_step))
    return steps, statistics.median(measure(steps) for _ in range(repeats))


def bare_seconds(steps: int, eval_every: int) -> float:
    t0 = time.perf_counter()
    bare_training(0, steps, eval_every)
    return time.perf_counter() - t0


def _pair_worker(barrier: Any, steps: int, eval_every: int, out: Any, rounds: int) -> None:
    bare_seconds(50, eval_every)  # imports and first-touch costs, untimed
    times = []
    for _ in range(rounds):
        barrier.wait()
        times.append(bare_seconds(steps, eval_every))
    out.put(times)


def concurrent_seconds(steps: int, eval_every: int, procs: int, rounds: int = 3) -> float:
    """One bare trial's time while `procs` of them run at once, in separate processes
    started together (median): how far this machine's CPUs are from scaling perfectly."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=_pair_worker, args=(barrier, steps, eval_every, out, rounds))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    try:
        times = [t for _ in workers for t in out.get(timeout=600)]
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.terminate()
                w.join()
    return statistics.median(times)


# -- main -------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--intervals", default="0.25,0.05", help="scheduler tick intervals (s)")
    p.add_argument("--trial-seconds", type=float, default=0.5, help="(c): training per trial")
    p.add_argument("--parts", default="a,b,c", help="which of a (lrlab), b (Tune), c to run")
    p.add_argument("--no-tune-c", action="store_true", help="(c) through lrlab only")
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600.0, help="per sweep (s)")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    if not parts <= {"a", "b", "c"} or args.trials < 1 or args.repeats < 1:
        p.error("--parts takes a,b,c; --trials and --repeats must be >= 1")
    intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    n = args.trials
    logging.basicConfig(level=logging.WARNING)
    # Without its file loggers Tune warns that result.json is missing; results come from
    # memory all the same.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)

    import ray

    print(f"# dispatch: {environment_line()}\n", flush=True)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lrlab-dispatch-")))
        url = stack.enter_context(pg_database(args.pg_admin_url, "lrlab_bench_dispatch"))
        store = open_store(url)
        stack.callback(store.close)
        if "c" in parts:
            # Before Ray and the scheduler thread exist, so nothing else runs in this process.
            # Each system's trial is its own ~trial-seconds: lrlab's runner (task build, steps,
            # store sink, checkpoints) and the bare loop Ray Tune runs (data, steps, eval).
            steps_c, t_runner = calibrate(
                args.trial_seconds, lambda k: runner_seconds(store, k, EVAL_EVERY_C)
            )
            steps_bare, t_bare = calibrate(
                args.trial_seconds, lambda k: bare_seconds(k, EVAL_EVERY_C)
            )
            t_pair = concurrent_seconds(steps_bare, EVAL_EVERY_C, args.num_cpus)
        t0 = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        stack.callback(ray.shutdown)
        print(f"ray.init: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        lrlab = Lrlab(store, url, work / "checkpoints")
        stack.callback(lrlab.close)
        trivial = base_spec(5, 5)

        def say(msg: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {msg} (load {load_average()})", file=sys.stderr)

        results: dict[str, list[Run]] = {}

        def record(label: str, run: Run) -> None:
            results.setdefault(label, []).append(run)
            say(f"{label}: {run.wall:.2f} s (startup {run.startup:.2f} s)")

        tune_label = "Ray Tune, reuse_actors"
        if parts & {"a", "b"}:
            for rep in range(args.repeats):
                jobs: list[tuple[str, float | None]] = []
                if "a" in parts:
                    jobs += [(f"lrlab, tick {iv:g} s", iv) for iv in intervals]
                if "b" in parts:
                    jobs.append((tune_label, None))
                if rep % 2:
                    jobs.reverse()
                for label, iv in jobs:
                    if iv is None:
                        record(label, run_tune(n, 5, 5, work / "tune", f"trivial-{rep}"))
                    else:
                        lrlab.use_interval(iv)
                        record(label, lrlab.run(trivial, n, 1, args.timeout))
            print(
                f"\n(a)/(b) {n} trivial trials (digits, max_steps 5, eval_every 5), "
                f"{args.num_cpus} CPUs, 1 CPU per trial; median of {args.repeats}\n"
            )
            print(summary(results, n, tune_label, None))
            if tune_label in results:
                tune_wall = statistics.median(r.wall for r in results[tune_label])
                tune_after = statistics.median(r.wall - r.startup for r in results[tune_label])
                for label, runs in results.items():
                    if label.startswith("lrlab"):
                        wall = statistics.median(r.wall for r in runs)
                        ratio = wall / tune_wall
                        ok = "meets" if ratio <= TARGET_TRIVIAL else "MISSES"
                        print(
                            f"\n{label}: {ratio:.2f}x Ray Tune ({ok} the <= 1.0x target); "
                            f"{wall / tune_after:.2f}x Ray Tune's time after its first trial "
                            "started (its actor start-up left out)"
                        )

        if "c" in parts:
            results = {}
            say(
                f"(c) lrlab max_steps {steps_c}: {t_runner:.3f} s; "
                f"bare max_steps {steps_bare}: {t_bare:.3f} s"
            )
            base_c = base_spec(steps_c, EVAL_EVERY_C)
            evals = -(-steps_c // EVAL_EVERY_C)
            ideal = {"lrlab": n * t_runner / args.num_cpus, "tune": n * t_bare / args.num_cpus}
            c_tune = f"{tune_label}, bare-loop trainable"
            for rep in range(args.repeats):
                jobs = [(f"lrlab, tick {intervals[0]:g} s", intervals[0])]
                if not args.no_tune_c:
                    jobs.append((c_tune, None))
                if rep % 2:
                    jobs.reverse()
                for label, iv in jobs:
                    if iv is None:
                        record(
                            label,
                            run_tune(n, steps_bare, EVAL_EVERY_C, work / "tune", f"half-{rep}"),
                        )
                    else:
                        lrlab.use_interval(iv)
                        record(label, lrlab.run(base_c, n, evals, args.timeout))
            print(
                f"\n(c) {n} trials of ~{args.trial_seconds:g} s of training each (eval every "
                f"{EVAL_EVERY_C} steps), calibrated in this process before Ray started, 1 "
                f"thread, median of 5: lrlab max_steps {steps_c} = {t_runner:.3f} s per trial "
                f"(runner: task build, steps, PostgreSQL sink, default checkpoint_every, "
                f"final flush); Ray Tune's trainable (bare loop) {steps_bare} steps = "
                f"{t_bare:.3f} s. "
                f"Ideal = {n} x that / {args.num_cpus} CPUs; median of {args.repeats}. "
                f"This machine's own scaling: with {args.num_cpus} bare trials at once (separate "
                f"processes), each took {t_pair:.3f} s ({t_pair / t_bare:.2f}x alone), so even "
                f"a perfect dispatcher needs ~{t_pair / t_bare:.2f}x the ideal here.\n"
            )
            print(summary(results, n, None, ideal))
        print(f"\nload average at end: {load_average()}")


def summary(
    results: dict[str, list[Run]], n: int, peer: str | None, ideal: dict[str, float] | None
) -> str:
    """The markdown table of a part: medians, every run, and the ratio to the peer/ideal."""
    peer_wall = statistics.median(r.wall for r in results[peer]) if peer in results else None
    rows = []
    for label, runs in results.items():
        wall = statistics.median(r.wall for r in runs)
        if ideal is not None:
            floor = ideal["lrlab" if label.startswith("lrlab") else "tune"]
            vs = f"{floor:.1f} s ideal: {wall / floor:.2f}x"
        elif peer_wall is not None:
            vs = f"{wall / peer_wall:.2f}x"
        else:
            vs = "-"
        notes = sorted({r.note for r in runs if r.note})
        rows.append(
            [
                label,
                f"**{wall:.2f}**",
                ", ".join(f"{r.wall:.2f}" for r in runs),
                f"{n / wall:.1f}",
                vs,
                f"{statistics.median(r.startup for r in runs):.2f}",
                f"{statistics.median(r.per_trial for r in runs) * 1e3:.0f}",
                "; ".join(notes),
            ]
        )
    return table(
        [
            "system",
            "wall s",
            "runs s",
            "trials/s",
            "vs ideal" if ideal is not None else "vs Ray Tune",
            "startup s",
            "per trial ms",
            "",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
