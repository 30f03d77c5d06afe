"""Sweeps: ASHA vs the full sweep, on the same 27 trials (9 lrs x 3 batch sizes) on digits.

    .venv/bin/python bench/asha.py [--steps 600] [--eval-every 50] [--order full,asha]

One `ray.init(num_cpus=2)`, lrlab's Scheduler (its background loop, as `lrlab serve` runs
it) over the RayLauncher, and a PostgreSQL store in a database made for the run (dropped
at the end, also on failure). Every trial asks for 1 CPU, so two train at a time.

Both sweeps are the same grid: digits (the default MLP), SGD with momentum 0.9, batch
size in (64, 16, 256) x lr in a scrambled order of 1e-4 .. 1 (so that neither sweep
meets the good lrs first or last), --steps optimizer steps, val_loss every --eval-every
steps, max_concurrent 2. The ASHA sweep adds early_stop {pruner: asha, min_resource: 1,
reduction_factor: 3}: rungs at the 1st, 3rd and 9th evaluation. A 2-trial warm-up sweep
first makes both Ray workers exist with torch imported.

Figures per sweep: trial-steps (the sum of last_step + 1 over its trials: what it
trained), wall time (from submit to the sweep finished in the store), and the best
val_loss (the lowest last evaluated val_loss of any trial, as the sweep's metric ranks
them). Target: ASHA's trial-steps <= 1/3 of the full sweep's, its best val_loss within
5% of the full sweep's.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import environment_line, load_average, pg_database, table  # noqa: E402

LRS = [0.01, 1.0, 1e-4, 0.1, 3e-3, 0.3, 3e-4, 0.03, 1e-3]
BATCH_SIZES = [64, 16, 256]
ASHA = {"pruner": "asha", "min_resource": 1, "reduction_factor": 3}


@dataclass(frozen=True)
class Outcome:
    name: str
    trial_steps: int
    wall: float
    best: float
    best_params: dict[str, Any]
    statuses: dict[str, int]
    reasons: list[str]


GRID = {"batch_size": BATCH_SIZES, "optimizer.lr": LRS}


def spec(
    name: str,
    steps: int,
    eval_every: int,
    early_stop: dict[str, Any] | None,
    space: dict[str, Any] = GRID,
) -> Any:
    from services.specs import SweepSpec

    base = {
        "task": "digits",
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "budget": {"max_steps": steps},
        "eval_every": eval_every,
        "checkpoint_every": steps,
    }
    return SweepSpec.model_validate(
        {
            "name": name,
            "base": base,
            "space": space,
            "max_concurrent": 2,
            "early_stop": early_stop,
        }
    )


def run_sweep(store: Any, scheduler: Any, project_id: int, sweep_spec: Any) -> Outcome:
    from services.domain.records import SweepStatus
    from services.settings import Settings
    from services.sweeps.submit import submit_sweep

    started = time.perf_counter()
    sweep = submit_sweep(store, Settings(), project_id, sweep_spec)
    scheduler.wake()
    while store.sweeps.get(project_id, sweep.id).status is not SweepStatus.FINISHED:
        time.sleep(0.05)  # polling the store for the end
    wall = time.perf_counter() - started
    trials = store.trials.list(project_id, sweep.id, limit=100, offset=0).items
    steps = sum(t.last_step + 1 for t in trials if t.last_step is not None)
    best, best_params = math.inf, {}
    for trial in trials:
        (series,) = store.metrics.read(trial.project_id, trial.id, ["val_loss"])
        last = series.values[-1] if series.values else math.nan
        if math.isfinite(last) and last < best:
            best, best_params = last, trial.params
    statuses: dict[str, int] = {}
    for trial in trials:
        statuses[trial.status.value] = statuses.get(trial.status.value, 0) + 1
    reasons = [t.stop_reason for t in trials if t.stop_reason and "asha" in t.stop_reason]
    return Outcome(sweep_spec.name, steps, wall, best, best_params, statuses, reasons)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--order", default="full,asha")
    args = parser.parse_args()

    import ray

    from services.scheduling.scheduler import Scheduler
    from services.store import open_store
    from workers.ray_launcher import RayLauncher

    print(environment_line())
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    outcomes: dict[str, Outcome] = {}
    try:
        with pg_database() as url, tempfile.TemporaryDirectory() as tmp:
            store = open_store(url)
            launcher = RayLauncher()
            scheduler = Scheduler(
                store, launcher, database_url=url, checkpoint_root=Path(tmp) / "checkpoints"
            )
            scheduler.start(interval=0.25)
            try:
                project = store.projects.create("bench")
                warm = spec("warm-up", 5, 5, None, space={"seed": [1, 2]})
                run_sweep(store, scheduler, project.id, warm)
                for name in args.order.split(","):
                    early = ASHA if name == "asha" else None
                    sweep_spec = spec(name, args.steps, args.eval_every, early)
                    outcomes[name] = run_sweep(store, scheduler, project.id, sweep_spec)
                    print(f"{name}: done, load average {load_average()}", flush=True)
            finally:
                scheduler.stop(timeout=30)
                launcher.close()
                store.close()
    finally:
        ray.shutdown()
    end = time.strftime("%H:%M:%S UTC", time.gmtime())
    report(outcomes, f"{start}-{end}", args)


def report(outcomes: dict[str, Outcome], when: str, args: argparse.Namespace) -> None:
    full, asha = outcomes["full"], outcomes["asha"]
    rows = [
        (
            o.name,
            f"{o.trial_steps:,}",
            f"{o.wall:.1f}",
            f"{o.best:.4f}",
            ", ".join(f"{k}={v}" for k, v in o.best_params.items()),
            ", ".join(f"{n} {s}" for s, n in sorted(o.statuses.items())),
        )
        for o in (full, asha)
    ]
    steps_ratio = asha.trial_steps / full.trial_steps
    gap = asha.best / full.best - 1
    print(f"\nRun {when}, load average at the end {load_average()}")
    print(f"--steps {args.steps} --eval-every {args.eval_every} --order {args.order}\n")
    print(
        table(["sweep", "trial-steps", "wall (s)", "best val_loss", "best trial", "trials"], rows)
    )
    met = steps_ratio <= 1 / 3 and gap <= 0.05
    print(
        f"\nASHA / full: trial-steps {steps_ratio:.1%} (target <= 33.3%), wall "
        f"{asha.wall / full.wall:.1%}, best val_loss {gap:+.1%} (target within 5%): "
        f"target {'met' if met else 'missed'}"
    )
    for reason in asha.reasons[:3]:
        print(f"  e.g. {reason}")


if __name__ == "__main__":
    main()
