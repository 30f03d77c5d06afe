"""What `run.log` costs a training loop, and how fast points get from the SDK to the store.

Against a real `lrlab serve` (API only, PostgreSQL) on this machine:

1. log() alone: calls/s of `run.log` with 5 float metrics in a tight loop (the sender
   thread running as it would).
2. Slowdown: a digits MLP trained with torch (1 thread, batch 32), in segments of
   `--steps` steps, bare and logging 5 metrics per step, as interleaved pairs (the order
   alternating) in one process; the per-pair ratio of wall times. The metric values are
   floats already: calling .item() on a tensor is the training script's cost, not the
   SDK's. Each logging segment's points are flushed after its timer stops; the sender
   thread's CPU time per point is reported beside it, so the work done outside the timer
   is visible.
3. End to end: points/s from the first log() call until the last point is stored, and a
   count of the stored points.

    .venv/bin/python bench/sdk_log.py [--pairs 100] [--steps 1000] [--points 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lrlab  # noqa: E402

from bench._common import (  # noqa: E402
    environment_line,
    load_average,
    lrlab_server,
    pg_database,
    table,
)

METRICS = ("train_loss", "lr", "grad_norm", "samples_per_sec", "epoch")
FORMS = {"packed": "series, base64 float64 columns", "json": "series, JSON lists", "rows": "points"}
LogFn = Callable[..., None] | None


# -- the training loop ----------------------------------------------------------------------
class Digits:
    """An MLP on scikit-learn's digits, one torch thread, as a trial would train it."""

    def __init__(self, batch_size: int = 32) -> None:
        import torch
        from sklearn.datasets import load_digits

        torch.set_num_threads(1)
        torch.manual_seed(0)
        x, y = load_digits(return_X_y=True)
        xt = torch.tensor(x / 16.0, dtype=torch.float32)
        yt = torch.tensor(y, dtype=torch.long)
        self.batches = [
            (xt[i : i + batch_size], yt[i : i + batch_size])
            for i in range(0, len(xt) - batch_size + 1, batch_size)
        ]
        self.model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.loss = torch.nn.functional.cross_entropy

    def train(self, start: int, steps: int, log: LogFn) -> float:
        """Wall seconds for `steps` steps; `log`, if given, gets 5 floats per step."""
        batches, n, model, opt, loss_fn = (
            self.batches,
            len(self.batches),
            self.model,
            self.opt,
            self.loss,
        )
        began = time.perf_counter()
        for step in range(start, start + steps):
            xb, yb = batches[step % n]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            if log is not None:
                f = step * 1e-6
                log(
                    {
                        "train_loss": 0.5 + f,
                        "lr": 0.05,
                        "grad_norm": 1.0 + f,
                        "samples_per_sec": 9000.0 + f,
                        "epoch": step / n,
                    },
                    step=step,
                )
        return time.perf_counter() - began


# -- the three measurements -------------------------------------------------------------------
def log_alone(client: lrlab.Client, calls: int) -> dict[str, float]:
    # Room for every point: this measures log() itself, never a wait for the server.
    run = client.start_run("bench-log-alone", max_points=calls * len(METRICS))
    values = dict.fromkeys(METRICS, 0.5)
    log = run.log
    began = time.perf_counter()
    for step in range(calls):
        log(values, step=step)
    elapsed = time.perf_counter() - began
    run.finish(timeout=600)
    return {"calls": calls, "seconds": elapsed, "calls_per_s": calls / elapsed}


def _quartiles(ratios: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return q1, median, q3


def slowdown(client: lrlab.Client, pairs: int, steps: int) -> dict[str, Any]:
    """Interleaved pairs. Wall: the loop's own time (log() calls and whatever the sender
    thread took from it meanwhile). CPU: the process's CPU time (all threads) from the
    segment's start until its points are stored, so the sender's whole work is charged
    to the logging arm wherever it ran: the figure the machine's load disturbs least."""
    digits = Digits()
    run = client.start_run("bench-slowdown", config={"task": "digits", "batch_size": 32})
    step = 0
    for _ in range(2):  # warm up torch, the allocator and the connection
        digits.train(step, steps // 2, None)
        digits.train(step, steps // 2, run.log)
        step += steps // 2
        run.flush(timeout=600)
    wall: dict[str, list[float]] = {"bare": [], "log": []}
    cpu: dict[str, list[float]] = {"bare": [], "log": []}
    cpu_before = run.stats.sender_cpu_seconds
    for pair in range(pairs):
        for arm in ("bare", "log") if pair % 2 == 0 else ("log", "bare"):
            began = time.process_time()
            wall[arm].append(digits.train(step, steps, run.log if arm == "log" else None))
            if arm == "log":
                step += steps
                run.flush(timeout=600)
            cpu[arm].append(time.process_time() - began)
    sender_cpu = run.stats.sender_cpu_seconds - cpu_before
    form = run._batcher._form  # what the server took: packed columns unless it predates them
    run.finish(timeout=600)
    wall_ratios = [lg / bare for lg, bare in zip(wall["log"], wall["bare"], strict=True)]
    cpu_ratios = [lg / bare for lg, bare in zip(cpu["log"], cpu["bare"], strict=True)]
    return {
        "bare_ms_per_step": 1e3 * statistics.median(wall["bare"]) / steps,
        "log_ms_per_step": 1e3 * statistics.median(wall["log"]) / steps,
        "bare_cpu_ms_per_step": 1e3 * statistics.median(cpu["bare"]) / steps,
        "wall": _quartiles(wall_ratios),
        "cpu": _quartiles(cpu_ratios),
        "cpu_pooled": sum(cpu["log"]) / sum(cpu["bare"]),
        "cpu_fastest": min(cpu["log"]) / min(cpu["bare"]),
        "sender_us_per_point": 1e6 * sender_cpu / (pairs * steps * len(METRICS)),
        "form": form,
    }


def end_to_end(client: lrlab.Client, points: int) -> dict[str, float]:
    calls = points // len(METRICS)
    run = client.start_run("bench-end-to-end")
    values = dict.fromkeys(METRICS, 0.25)
    began = time.perf_counter()
    for step in range(calls):
        run.log(values, step=step)
    run.finish(timeout=1200)
    elapsed = time.perf_counter() - began
    stored = sum(len(s.steps) for s in client.metrics(run.id))
    assert stored == calls * len(METRICS), f"stored {stored} of {calls * len(METRICS)} points"
    return {"points": stored, "seconds": elapsed, "points_per_s": stored / elapsed}


# -- report ---------------------------------------------------------------------------------
def _pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.2f}%"


def _spread(q: tuple[float, float, float]) -> str:
    return f"{_pct(q[1])} (IQR {_pct(q[0])} to {_pct(q[2])})"


def report(
    args: argparse.Namespace,
    environment: str,
    alone: dict[str, float],
    slow: dict[str, Any],
    e2e: dict[str, float],
) -> str:
    rows = [
        (
            "run.log alone (5 floats)",
            f"{alone['calls_per_s']:,.0f} calls/s ({1e6 / alone['calls_per_s']:.2f} us/call)",
        ),
        ("bare training step, wall (median)", f"{slow['bare_ms_per_step']:.3f} ms"),
        ("step + run.log, wall (median)", f"{slow['log_ms_per_step']:.3f} ms"),
        ("bare training step, CPU (median)", f"{slow['bare_cpu_ms_per_step']:.3f} ms"),
        ("slowdown, CPU incl. sender (median of pairs)", _spread(slow["cpu"])),
        ("slowdown, CPU incl. sender (pooled)", _pct(slow["cpu_pooled"])),
        ("slowdown, CPU incl. sender (fastest segments)", _pct(slow["cpu_fastest"])),
        ("slowdown, wall (median of pairs)", _spread(slow["wall"])),
        ("sender thread CPU per point", f"{slow['sender_us_per_point']:.2f} us"),
        ("metric batches sent as", FORMS.get(slow["form"], slow["form"])),
        (
            "end to end, SDK to store",
            f"{e2e['points_per_s']:,.0f} points/s "
            f"({e2e['points']:,.0f} points in {e2e['seconds']:.1f} s, all stored)",
        ),
    ]
    ratio = slow["cpu"][1]
    verdict = "meets" if ratio <= 1.02 else "misses"
    return "\n".join(
        [
            f"Command: `.venv/bin/python bench/sdk_log.py --pairs {args.pairs} --steps "
            f"{args.steps} --calls {args.calls} --points {args.points}`",
            f"Run: {datetime.now().strftime('%Y-%m-%d %H:%M')}; {environment}; "
            f"load average at the end {load_average()}",
            f"Training loop: digits MLP 64-128-10, batch 32, SGD with momentum, torch 1 "
            f"thread; {args.pairs} interleaved pairs of {args.steps} steps.",
            "",
            table(["measure", "value"], rows),
            "",
            f"Slowdown at 5 metrics per step (CPU, sender included): {_pct(ratio)} "
            f"(target <= 2%: {verdict}).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    environment = environment_line()  # the load average before the run
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database())
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "data"
        base, token = stack.enter_context(lrlab_server(url, data_dir, ["--no-scheduler"]))
        client = stack.enter_context(lrlab.Client(base, token))
        alone = log_alone(client, args.calls)
        slow = slowdown(client, args.pairs, args.steps)
        e2e = end_to_end(client, args.points)
    print(report(args, environment, alone, slow, e2e))


if __name__ == "__main__":
    main()
