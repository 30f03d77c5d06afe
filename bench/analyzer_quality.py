"""Analyzer quality on real curves: precision and recall per finding kind.

    .venv/bin/python bench/analyzer_quality.py [--misses] [--split all|tuning|held-out]
                                               [--seed N ...]
                                               [--inputs full|no-grad-norm|losses-only]

Runs services.analyzer.diagnose on every curve of the corpus in tests/corpus/ (curves
made by actually training with lrlab's runner on recipes that cause each condition,
labelled by the recipe; see bench/corpus/) and prints, for the tuning half, the
held-out half and all of it, a table of TP/FP/FN, precision and recall per kind against
the issue's targets, and a confusion table; with --seed, also for the curves of those
seeds alone (the fresh seeds' own check, see bench/corpus/recipes.py). Then the time
diagnose() takes: per corpus curve, and on a 10,000-step run with five series of 10,000
points each. --inputs gives the analyzer less than the runner logs: no grad_norm (the
gradient kinds cannot be found then), or only the loss series with no configuration at
all (no lr series, no schedule: what a bare external run may send).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus.files import load_corpus  # noqa: E402
from bench.corpus.score import INPUTS, held_out, judge, misses, report  # noqa: E402
from services.analyzer import RunContext, diagnose  # noqa: E402


def synthetic_timing(repeats: int = 20) -> tuple[float, float, float]:
    """Median and max wall ms, and median CPU ms (this process), of diagnose() on 10,000
    steps of five dense series. CPU time is the fairer figure on a shared machine."""
    rng = np.random.default_rng(0)
    steps = np.arange(10_000)
    t = steps.astype(float)
    loss = (0.05 + 2.0 * np.exp(-t / 2000)) * np.exp(rng.normal(0, 0.2, t.size))
    series = {
        "train_loss": (steps, loss),
        "val_loss": (steps, 0.1 + 2.0 * np.exp(-t / 2200) + rng.normal(0, 0.01, t.size)),
        "val_accuracy": (steps, 1 - np.exp(-t / 2000)),
        "lr": (steps, 0.05 * (1 + np.cos(np.pi * t / t.size)) / 2),
        "grad_norm": (steps, np.exp(rng.normal(0, 0.3, t.size))),
    }
    ctx = RunContext(lr=0.05, optimizer="sgd", schedule="cosine", total_steps=10_000)
    diagnose(series, ctx)  # warm caches and imports
    times, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        diagnose(series, ctx)
        times.append(1000 * (time.perf_counter() - began))
        cpu.append(1000 * (time.process_time() - began_cpu))
    return statistics.median(times), max(times), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true", help="list every FP and FN curve")
    parser.add_argument(
        "--split",
        choices=("all", "tuning", "held-out", "seed"),
        default="all",
        help="which part --misses lists ('seed': the curves of --seed)",
    )
    parser.add_argument(
        "--seed", type=int, action="append", default=[], help="also score these seeds alone"
    )
    parser.add_argument(
        "--inputs", choices=INPUTS, default="full", help="what the analyzer is given"
    )
    args = parser.parse_args(argv)
    curves = load_corpus()
    if not curves:
        print("no corpus: run `.venv/bin/python -m bench.corpus.generate` first")
        return 1
    judged = judge(curves, args.inputs)
    left_out = [c.id for c in curves if not c.made]
    print(f"{len(curves)} curves, {len(judged)} scored, {len(left_out)} left out (recipe missed)")
    print(f"inputs: {args.inputs}")
    halves = {
        "tuning": [j for j in judged if not held_out(j.curve)],
        "held-out": [j for j in judged if held_out(j.curve)],
        "all": judged,
    }
    if args.seed:
        halves["seed"] = [j for j in judged if j.curve.seed in args.seed]
    elif args.split == "seed":
        parser.error("--split seed needs --seed")
    for name, part in halves.items():
        title = f"seed {', '.join(map(str, args.seed))}" if name == "seed" else name
        print("\n" + report(part, f"### {title}"))
    if args.misses:
        print(f"\nFalse positives and negatives ({args.split}):")
        for line in misses(halves[args.split]):
            print("  " + line)
        for cid in left_out:
            print(f"  left out: {cid}")
    per_curve = [1000 * j.seconds for j in judged]
    med, worst, cpu = synthetic_timing()
    print(
        f"\ndiagnose(): corpus curves median {statistics.median(per_curve):.1f} ms, "
        f"max {max(per_curve):.1f} ms; 10,000 steps x 5 series median {med:.1f} ms "
        f"(CPU {cpu:.1f} ms), max {worst:.1f} ms; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
