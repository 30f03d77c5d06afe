"""Sharpness early warning: how far ahead of a blow-up it fires, how often it fires on
healthy runs, and what measuring the sharpness costs.

    .venv/bin/python bench/sharpness.py [--every 5] [--cost-steps 600] [--repeats 3]
        [--only NAME,...] [--skip-cost]

Runs: real torch training through workers.runner.train (in this process, 1 torch thread,
an in-memory sink, no database), SGD on digits (MLP 64-128-10) and on the generated
regression task (a linear model and an MLP 8-64-64-1), full batch and mini-batch, with
diagnostics.sharpness_every = --every. "diverges" runs raise the lr past the stability
limit (a warmup to, or an exponential ramp towards, an lr several times 2/sharpness) or
start above it; "healthy" runs train at a fixed lr below it, full-batch GD at the edge of
stability among them.

For each run the analyzer (services.analyzer.diagnose, the rules as shipped) reads:
- the whole run, finished: the divergence onset (its finding's step) and, when the
  sharpness had crossed first, `sharpness_warned_at`;
- every prefix ending at a sharpness step, as a live trial (running=True), as the live
  analyzer would see it: the first prefix with the sharpness warning (or a divergence
  finding carrying the crossing), and the first prefix where the divergence rule itself
  fires (the warning the analyzer gave before this rule).
Lead = the final onset minus the step of the first live sharpness warning: how many steps
before the loss blows up, by the analyzer's own onset, the warning is there. A healthy run
counts as a false alarm when any live prefix, or the finished run, has the warning.

Cost: one estimate (the forward pass, the gradient with its graph, the Hessian-vector
products until the estimate settles) timed alone on three batches (digits MLP at batch 32
and full batch, regression MLP full batch), median of 30 after 5 warm-ups; and the wall
time of a 600-step digits MLP run at batch 32 (lr 0.05) bare, with sharpness_every 50 and
10, repeats interleaved, each ratio taken to the bare run of the same repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._common import environment_line, table  # noqa: E402
from bench.corpus.record import record  # noqa: E402
from services.analyzer import Diagnosis, Finding, RunContext, diagnose  # noqa: E402
from services.specs import TrialSpec  # noqa: E402
from workers.optim import build_training  # noqa: E402
from workers.sharpness import SharpnessProbe  # noqa: E402
from workers.tasks import build_task  # noqa: E402

DIGITS = {"name": "digits"}
LINEAR = {"name": "regression", "hidden": [], "n_samples": 1000}
REG_MLP = {"name": "regression", "n_samples": 1000}


def sgd(lr: float, momentum: float = 0.0) -> dict[str, Any]:
    return {"name": "sgd", "lr": lr, "momentum": momentum}


def case(
    task: dict[str, Any],
    batch: int | str,
    optimizer: dict[str, Any],
    steps: int,
    schedule: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    return {
        "task": task,
        "batch_size": batch,
        "optimizer": optimizer,
        "schedule": schedule or {"name": "constant"},
        "budget": {"max_steps": steps},
        "eval_every": 25,
        "seed": seed,
    }


def ramp(end_lr: float) -> dict[str, Any]:
    return {"name": "range_test", "end_lr": end_lr}


def warmup(steps: int) -> dict[str, Any]:
    return {"name": "constant", "warmup_steps": steps}


# (name, expected, spec): expected is "diverges" or "healthy".
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("linear-full-ramp", "diverges", case(LINEAR, "full", sgd(0.05), 300, ramp(5.0))),
    ("linear-full-warmup", "diverges", case(LINEAR, "full", sgd(1.5), 300, warmup(150))),
    ("linear-b32-ramp", "diverges", case(LINEAR, 32, sgd(0.02), 300, ramp(5.0))),
    ("regmlp-full-ramp", "diverges", case(REG_MLP, "full", sgd(0.02), 300, ramp(5.0))),
    ("regmlp-b32-ramp", "diverges", case(REG_MLP, 32, sgd(0.01), 300, ramp(3.0))),
    ("regmlp-full-mom-ramp", "diverges", case(REG_MLP, "full", sgd(0.005, 0.9), 300, ramp(1.0))),
    ("digits-full-ramp", "diverges", case(DIGITS, "full", sgd(0.05), 300, ramp(30.0))),
    ("digits-b64-ramp", "diverges", case(DIGITS, 64, sgd(0.05), 300, ramp(30.0))),
    ("digits-b32-mom-warmup", "diverges", case(DIGITS, 32, sgd(3.0, 0.9), 300, warmup(150))),
    ("digits-full-ramp-s1", "diverges", case(DIGITS, "full", sgd(0.05), 300, ramp(30.0), 1)),
    ("regmlp-full-ramp-s1", "diverges", case(REG_MLP, "full", sgd(0.02), 300, ramp(5.0), 1)),
    ("linear-full-const-high", "diverges", case(LINEAR, "full", sgd(1.0), 200)),
    ("linear-full-ok", "healthy", case(LINEAR, "full", sgd(0.5), 200)),
    ("linear-b32-ok", "healthy", case(LINEAR, 32, sgd(0.2), 300)),
    ("regmlp-full-ok", "healthy", case(REG_MLP, "full", sgd(0.1), 300)),
    ("regmlp-b32-ok", "healthy", case(REG_MLP, 32, sgd(0.05), 300)),
    ("regmlp-full-mom-ok", "healthy", case(REG_MLP, "full", sgd(0.02, 0.9), 300)),
    ("digits-full-eos", "healthy", case(DIGITS, "full", sgd(2.0), 300)),
    ("digits-full-ok", "healthy", case(DIGITS, "full", sgd(0.5), 300)),
    ("digits-b32-ok", "healthy", case(DIGITS, 32, sgd(0.1), 300)),
    ("digits-b32-mom-ok", "healthy", case(DIGITS, 32, sgd(0.05, 0.9), 300)),
]


def train_run(spec: dict[str, Any]) -> tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The trainer's outcome and the run's series as arrays (bench.corpus.record trains)."""
    series, outcome, _ = record(spec)
    arrays = {
        name: (np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
        for name, (steps, values) in series.items()
    }
    return outcome, arrays


def _prefix(series: dict[str, tuple[np.ndarray, np.ndarray]], end: int) -> dict[str, Any]:
    return {name: (s[s <= end], v[s <= end]) for name, (s, v) in series.items()}


def _warned(finding: Finding | None) -> bool:
    if finding is None:
        return False
    return bool(finding.evidence.get("early_warning")) or "sharpness_warned_at" in finding.evidence


def _plain(finding: Finding | None) -> bool:
    return finding is not None and not finding.evidence.get("early_warning")


@dataclass
class Outcome:
    name: str
    expected: str
    trained: str
    steps: int
    onset: int | None  # the finished run's divergence onset
    warned_at: int | None  # sharpness_warned_at in the finished run's finding
    final_warning: bool  # the finished run has the early warning
    first_live_warning: int | None
    first_live_divergence: int | None
    crossing_ratio: float | None


def judge(name: str, expected: str, spec: dict[str, Any], every: int) -> Outcome:
    trained, series = train_run(spec)
    loss_steps = series["train_loss"][0]
    total = int(loss_steps[-1]) + 1
    final_ctx = RunContext.from_spec(spec, total_steps=total)
    final: Diagnosis = diagnose(series, final_ctx)
    div = final.get("divergence")
    onset = div.step if div is not None and not div.evidence.get("early_warning") else None
    warned_at = div.evidence.get("sharpness_warned_at") if div is not None else None
    live_ctx = RunContext.from_spec(spec, running=True, total_steps=spec["budget"]["max_steps"])
    first_warn = first_div = None
    for end in range(every, total, every):
        found = diagnose(_prefix(series, end), live_ctx).get("divergence")
        if first_warn is None and _warned(found):
            first_warn = end
        if first_div is None and _plain(found):
            first_div = end
        if first_warn is not None and first_div is not None:
            break
    ratio = None
    if div is not None and "stability_limit" in div.evidence:
        ratio = float(div.evidence["sharpness"]) / float(div.evidence["stability_limit"])
    return Outcome(
        name,
        expected,
        trained,
        total,
        onset,
        int(warned_at) if isinstance(warned_at, int) else None,
        div is not None and bool(div.evidence.get("early_warning")),
        first_warn,
        first_div,
        ratio,
    )


def quality(every: int, only: set[str] | None) -> list[Outcome]:
    torch.set_num_threads(1)
    outcomes = []
    for name, expected, base in CASES:
        if only and name not in only:
            continue
        spec = {**base, "diagnostics": {"sharpness_every": every}}
        started = time.perf_counter()
        outcome = judge(name, expected, spec, every)
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        outcomes.append(outcome)
    return outcomes


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def report_quality(outcomes: list[Outcome], every: int) -> None:
    rows = []
    for o in outcomes:
        lead = None
        if o.onset is not None and o.first_live_warning is not None:
            lead = o.onset - o.first_live_warning
        rows.append(
            [
                o.name,
                o.expected,
                o.trained,
                o.steps,
                _dash(o.onset),
                _dash(o.warned_at),
                _dash(o.first_live_warning),
                _dash(lead),
                _dash(o.first_live_divergence),
                "yes" if o.final_warning else "no",
            ]
        )
    print(
        table(
            [
                "run",
                "expected",
                "trained",
                "steps",
                "onset (final)",
                "warned_at (final)",
                "first live warning",
                "lead (steps)",
                "first live divergence",
                "final warning",
            ],
            rows,
        )
    )
    diverging = [o for o in outcomes if o.expected == "diverges"]
    blown = [o for o in diverging if o.onset is not None]
    ahead = [
        o for o in blown if o.first_live_warning is not None and o.first_live_warning <= o.onset
    ]
    leads = [o.onset - o.first_live_warning for o in ahead]  # type: ignore[operator]
    earlier = [
        o.first_live_divergence - o.first_live_warning
        for o in ahead
        if o.first_live_divergence is not None
    ]  # type: ignore[operator]
    healthy = [o for o in outcomes if o.expected == "healthy"]
    live_false = [o.name for o in healthy if o.first_live_warning is not None]
    final_false = [o.name for o in healthy if o.final_warning or o.onset is not None]
    print()
    print(f"sharpness_every = {every}")
    print(
        f"diverging runs: {len(diverging)}, blown up by the analyzer's onset: {len(blown)}, "
        f"warned at or before the onset: {len(ahead)}"
    )
    if leads:
        print(
            f"lead before the onset (steps): median {statistics.median(leads):g}, "
            f"min {min(leads)}, max {max(leads)}"
        )
    if earlier:
        print(
            f"warning ahead of the live divergence rule (steps): median "
            f"{statistics.median(earlier):g}, min {min(earlier)}, max {max(earlier)}"
        )
    print(
        f"healthy runs: {len(healthy)}; a live warning on {len(live_false)} "
        f"({', '.join(live_false) or 'none'}); the finished run flagged on "
        f"{len(final_false)} ({', '.join(final_false) or 'none'})"
    )


def _estimate_cost(
    task: dict[str, Any], batch: int | str, repeats: int = 30
) -> tuple[float, float]:
    spec = TrialSpec.model_validate(case(task, batch, sgd(0.05), 10))
    built = build_task(spec)
    t = build_training(spec, built)
    generator = torch.Generator().manual_seed(0)
    batch_data = next(iter(built.epoch_batches(t.batch_size, generator)))
    probe = SharpnessProbe(built.model, iters=20, seed=0)
    calls = 0

    def objective() -> torch.Tensor:
        nonlocal calls
        calls += 1
        return built.loss(batch_data)

    for _ in range(5):
        probe.estimate(objective)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        probe.estimate(objective)
        times.append(time.perf_counter() - started)
    forward = []
    for _ in range(repeats):
        started = time.perf_counter()
        built.model.zero_grad()
        built.loss(batch_data).backward()
        forward.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3, statistics.median(forward) * 1e3


def cost(steps: int, repeats: int) -> None:
    torch.set_num_threads(1)
    rows = []
    for label, task, batch in [
        ("digits MLP, batch 32", DIGITS, 32),
        ("digits MLP, full batch (1437)", DIGITS, "full"),
        ("regression MLP, full batch (800)", REG_MLP, "full"),
    ]:
        estimate, step = _estimate_cost(task, batch)
        rows.append([label, f"{estimate:.2f}", f"{step:.3f}", f"{estimate / step:.1f}"])
    print(table(["batch", "one estimate (ms)", "forward + backward (ms)", "ratio"], rows))
    print()
    variants = {"bare": None, "every 50": 50, "every 10": 10}
    spec = case(DIGITS, 32, sgd(0.05), steps)
    walls: dict[str, list[float]] = {k: [] for k in variants}
    ratios: dict[str, list[float]] = {k: [] for k in variants}
    for every in variants.values():  # untimed warm-up of each
        train_run({**spec, "diagnostics": {"sharpness_every": every}})
    for repeat in range(repeats):
        order = list(variants)[repeat % 3 :] + list(variants)[: repeat % 3]
        this: dict[str, float] = {}
        for label in order:
            started = time.perf_counter()
            train_run({**spec, "diagnostics": {"sharpness_every": variants[label]}})
            this[label] = time.perf_counter() - started
        for label in variants:
            walls[label].append(this[label])
            ratios[label].append(this[label] / this["bare"])
    print(
        table(
            [
                "digits MLP, batch 32, " + f"{steps} steps",
                "wall (s, median)",
                "ratio to bare (median)",
            ],
            [
                [k, f"{statistics.median(walls[k]):.2f}", f"{statistics.median(ratios[k]):.2f}"]
                for k in variants
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--cost-steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    print(environment_line())
    print()
    only = set(args.only.split(",")) if args.only else None
    report_quality(quality(args.every, only), args.every)
    if not args.skip_cost:
        print()
        cost(args.cost_steps, args.repeats)


if __name__ == "__main__":
    main()
