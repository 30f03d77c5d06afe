"""What per-layer gradient norms cost the runner: on against off, in one process.

    .venv/bin/python bench/runner_layer_norms.py [--steps 3000] [--repeats 9]
        [--backend postgres|sqlite]

bench/runner_overhead.py's three loops on its workload (digits MLP 64-128-10, batch 32,
Adam, 1 thread, eval every 50, a checkpoint every 200, a real store): the bare loop, the
runner as it ships (grad_norm/<index>.<module> every LAYER_EVERY = 8 steps) and the runner
with per-layer norms off (workers.runner.LAYER_EVERY patched, for the run, to a step that
never comes). The order rotates each repeat after one untimed warm-up of each; the figures
are medians of per-repeat ratios, wall and CPU time, as in runner_overhead.py. Then one
sample alone: `LayerNorms.measure` on the flat buffer of a built digits task (the MLP
above, and one of 6 hidden layers of 32), 3,000 calls, median of 7 timings. Separate
before/after runs of runner_overhead.py on this shared machine drift by more than the
difference they look for; pairs a few seconds apart do not.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import workers.runner as runner_module  # noqa: E402
from bench._common import environment_line, load_average, pg_database, table  # noqa: E402
from bench.runner_overhead import WARM_STEPS, make_spec, run_bare, run_runner  # noqa: E402
from services.specs import TrialSpec  # noqa: E402
from services.store import Store, open_store  # noqa: E402
from workers.optim.grads import GradBuffer  # noqa: E402
from workers.optim.layer_norms import LayerNorms  # noqa: E402
from workers.tasks import build_task  # noqa: E402

NEVER = 2**62  # a LAYER_EVERY no step reaches but step 0 (one sample per run)
MICRO_HIDDEN = ([128], [32] * 6)


def sample_cost(hidden: list[int]) -> tuple[int, float]:
    """Layers of a digits MLP with `hidden`, and seconds per LayerNorms.measure call."""
    spec = {"task": {"name": "digits", "hidden": hidden}, "budget": {"max_steps": 10}}
    task = build_task(TrialSpec.model_validate(spec))
    params = list(task.model.parameters())
    task.loss(next(iter(task.epoch_batches(32, torch.Generator().manual_seed(0))))).backward()
    grads = GradBuffer(params)
    grads.norm()  # adopts the flat buffer, as the runner's first step does
    layers = LayerNorms(task.model)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(3000):
            layers.measure(grads)
        times.append((time.perf_counter() - t0) / 3000)
    return len(layers.names), statistics.median(times)


def _runner(store: Store, workdir: Path, every: int) -> Callable[[TrialSpec], dict[str, float]]:
    def run(spec: TrialSpec) -> dict[str, float]:
        shipped = runner_module.LAYER_EVERY
        runner_module.LAYER_EVERY = every
        try:
            return run_runner(store, spec, workdir)
        finally:
            runner_module.LAYER_EVERY = shipped

    return run


def _paired(runs: list[dict[str, float]], base: list[dict[str, float]], key: str) -> float:
    """Median over repeats of base time / run time (a speed ratio)."""
    return statistics.median(b[key] / r[key] for r, b in zip(runs, base, strict=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"# per-layer norms on/off: {environment_line()}\n", flush=True)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lrlab-bench-")))
        if args.backend == "sqlite":
            url = f"sqlite:///{workdir / 'lrlab.db'}"
        else:
            url = stack.enter_context(pg_database(args.pg_admin_url, "lrlab_bench_layers"))
        store = open_store(url)
        stack.callback(store.close)
        shipped = runner_module.LAYER_EVERY
        variants: dict[str, Callable[[TrialSpec], dict[str, float]]] = {
            "bare loop": lambda s: run_bare(s.budget.max_steps or 0, s.seed),
            f"runner, per-layer norms every {shipped} steps": _runner(store, workdir, shipped),
            "runner, per-layer norms off": _runner(store, workdir, NEVER),
        }
        names = list(variants)
        for name in names:  # untimed warm-up
            variants[name](make_spec(WARM_STEPS, 0))
        spec = make_spec(args.steps, 0)
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        for rep in range(args.repeats):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                results[name].append(variants[name](spec))
        bare, off = results[names[0]], results[names[2]]
        rows = [
            [
                n,
                f"{args.steps / statistics.median(r['steps_s'] for r in results[n]):,.0f}",
                f"{_paired(results[n], bare, 'steps_s'):.1%}",
                f"{_paired(results[n], bare, 'cpu_s'):.1%}",
                f"{_paired(results[n], off, 'steps_s'):.1%}",
                f"{_paired(results[n], off, 'cpu_s'):.1%}",
            ]
            for n in names
        ]
        print(
            f"{args.steps} steps, {args.backend} store, median of {args.repeats} interleaved "
            "repeats, paired ratios (speed: higher is faster)\n"
        )
        print(
            table(
                ["loop", "steps/s", "vs bare", "vs bare, CPU", "vs norms off", "vs norms off, CPU"],
                rows,
            )
        )
        print(f"load average at end: {load_average()}\n")
    micro = []
    for hidden in MICRO_HIDDEN:
        n, cost = sample_cost(hidden)
        per_step = cost / runner_module.LAYER_EVERY
        micro.append([f"digits MLP {hidden}", str(n), f"{cost * 1e6:.1f}", f"{per_step * 1e6:.1f}"])
    print(table(["model", "layers", "µs per sample", "µs per step"], micro))


if __name__ == "__main__":
    main()
