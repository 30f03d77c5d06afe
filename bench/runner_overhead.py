"""Runner overhead: lrlab's training loop against a bare, hand-written torch loop.

    .venv/bin/python bench/runner_overhead.py [--steps 3000] [--repeats 5]
        [--backends sqlite,postgres] [--checkpoint-every 200] [--profile]
    .venv/bin/python bench/runner_overhead.py --spy-report RAW --steps S --repeats R

Both train digits / MLP 64-128-10, batch 32, Adam (lr 1e-3), 1 torch thread, in this
process, on the same tensors (checked equal), with the same batch order logic (a randperm
per epoch from a seeded generator, slices of 32, the last one short) and an evaluation on
the validation split every 50 steps.

  bare    zero_grad, cross_entropy, backward, step, loss.item() appended to a list; every
          50 steps model.eval(), val loss + accuracy under no_grad, model.train().
  runner  workers.runner.train(spec, sink=MetricSink(store.metrics.write), checkpoints=
          CheckpointStore(tmp), control=TrialControl(heartbeat)), wired as in
          workers/attempt.py: a real store (a SQLite file in a temp dir, or a PostgreSQL
          database created for the run and dropped after), metrics every step (lr,
          train_loss, grad_norm) and every evaluation (val_loss, val_accuracy,
          samples_per_sec), a checkpoint every 200 steps (carrying the sink's unsent
          points; written by a background thread), heartbeats every second to the
          claimed trial.

Timing covers the steps only: the clock starts after the model, data and optimizer exist
(bare: after building them; runner: when build_training returns inside train, measured by
wrapping it) and stops after the last evaluation (runner: after train returns, i.e. after
its final flush, and sink.close()). The one-time setup (loading digits, split, model build)
is timed separately and reported in a second column for both. Repeats are interleaved
(the order rotates each repeat), after one untimed warm-up of each variant; medians, and
the median of per-repeat ratios (this VM's speed drifts by seconds, so pairs are fairer).
Every runner run is checked afterwards: all train_loss and val_loss points stored.

--profile adds ablations to the same interleaved repeats (no-op sink / no checkpoints /
points written by the training thread / grad norm or scheduler step patched out of this
process for the run / the runner's batches indexed per step as the bare loop does / the
bare loop with the runner's gathered batches), times each per-step part alone, and prints
a cProfile of one run.
--spy-report reads a `py-spy record --format raw` profile of this script (see --help).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import workers.runner as runner_module  # noqa: E402
from bench._common import (  # noqa: E402
    environment_line,
    load_average,
    new_trial,
    pg_database,
    table,
)
from services.specs import TrialSpec  # noqa: E402
from services.store import Store, open_store  # noqa: E402
from workers.checkpoints import CheckpointStore  # noqa: E402
from workers.control import TrialControl  # noqa: E402
from workers.sink import MetricSink, rows_of  # noqa: E402
from workers.tasks import build_task  # noqa: E402

TARGET = 0.95  # runner steps/s over bare steps/s
LR = 1e-3
BATCH = 32
EVAL_EVERY = 50
CHECKPOINT_EVERY = 200  # the brief's setting; --checkpoint-every changes it (spec default: 1000)
HIDDEN = 128
WARM_STEPS = 400  # an untimed run of each variant first


def make_spec(steps: int, seed: int) -> TrialSpec:
    return TrialSpec.model_validate(
        {
            "task": {"name": "digits", "model": "mlp", "hidden": [HIDDEN]},
            "optimizer": {"name": "adam", "lr": LR},
            "batch_size": BATCH,
            "budget": {"max_steps": steps},
            "eval_every": EVAL_EVERY,
            "checkpoint_every": CHECKPOINT_EVERY,
            "seed": seed,
            "max_restarts": 0,
        }
    )


# -- the bare loop ----------------------------------------------------------------------
def bare_data(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits as the task builds them: stratified 80/20 split, standardized on train."""
    data = load_digits()
    x_tr, x_va, y_tr, y_va = train_test_split(
        data.data, data.target, test_size=0.2, random_state=seed, stratify=data.target
    )
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    std[std == 0] = 1.0
    x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std
    f32, i64 = torch.float32, torch.long
    return (
        torch.tensor(x_tr, dtype=f32),
        torch.tensor(y_tr, dtype=i64),
        torch.tensor(x_va, dtype=f32),
        torch.tensor(y_va, dtype=i64),
    )


def bare_evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Validation loss and accuracy, as the digits task computes them."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
        result = (
            float(F.cross_entropy(logits, y)),
            float((logits.argmax(dim=1) == y).float().mean()),
        )
    model.train()
    return result


def run_bare(steps: int, seed: int, gathered: bool = False) -> dict[str, float]:
    """The hand-written loop; `gathered` (a what-if) gathers each epoch's rows at once and
    slices batches from them, as DatasetTask.epoch_batches does, instead of indexing per
    step."""
    t_setup = time.perf_counter()
    x_tr, y_tr, x_va, y_va = bare_data(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    n = len(x_tr)
    losses: list[float] = []
    evals: list[tuple[float, float]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    step = 0
    while step < steps:
        order = torch.randperm(n, generator=gen)
        if gathered:
            x_ep, y_ep = x_tr[order], y_tr[order]
        for start in range(0, n, BATCH):
            if step >= steps:
                break
            if gathered:
                x, y = x_ep[start : start + BATCH], y_ep[start : start + BATCH]
            else:
                index = order[start : start + BATCH]
                x, y = x_tr[index], y_tr[index]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % EVAL_EVERY == 0 or step == steps:
                evals.append(bare_evaluate(model, x_va, y_va))
    t1, c1 = time.perf_counter(), time.process_time()
    assert len(losses) == steps and np.isfinite(losses).all()
    return {"steps_s": t1 - t0, "cpu_s": c1 - c0, "setup_s": t0 - t_setup, "final_loss": losses[-1]}


# -- lrlab's runner ---------------------------------------------------------------------
class _Clock:
    """Wraps runner.build_training to stamp the end of the runner's one-time setup."""

    def __init__(self) -> None:
        self.ready: float | None = None
        self.ready_cpu = 0.0  # time.process_time() at the same moment
        self._real = runner_module.build_training

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def build_training(spec: Any, task: Any) -> Any:
            t = self._real(spec, task)
            self.ready, self.ready_cpu = time.perf_counter(), time.process_time()
            return t

        runner_module.build_training = build_training  # type: ignore[assignment]
        try:
            yield
        finally:
            runner_module.build_training = self._real


class NullSink:
    """Ablation only: a sink that drops every point."""

    def add(self, name: str, step: int, value: float) -> None:
        pass

    def add_steps(self, first_step: int, columns: Any, times: Any) -> None:
        pass

    def unsent(self) -> list[Any]:
        return []

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class NullCheckpoints(CheckpointStore):
    """Ablation only: never finds a checkpoint, never writes one."""

    def save(self, state: dict[str, Any]) -> None:
        pass

    def load(self) -> dict[str, Any] | None:
        return None


class InlineSink:
    """Ablation only (a what-if): the same batching by count, but written by the training
    thread itself, so no second Python thread competes with it for the GIL."""

    def __init__(self, write: Callable[[list[Any]], object], max_points: int = 1000) -> None:
        self._write, self._max, self._buffer = write, max_points, []  # type: ignore[var-annotated]

    def add(self, name: str, step: int, value: float) -> None:
        self._buffer.append((name, step, value, time.time()))
        if len(self._buffer) >= self._max:
            self.flush()

    def add_steps(self, first_step: int, columns: Any, times: Any) -> None:
        self._buffer.extend(rows_of([(first_step, columns, times)]))
        if len(self._buffer) >= self._max:
            self.flush()

    def unsent(self) -> list[Any]:
        self.flush()
        return []

    def flush(self) -> None:
        if self._buffer:
            self._write(self._buffer)
            self._buffer = []

    def close(self) -> None:
        self.flush()


def _indexed_batches(self: Any, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
    """DatasetTask.epoch_batches as it was: two gathers per step (the bare loop's way)."""
    order = torch.randperm(self.train_size, generator=generator)
    for start in range(0, self.train_size, batch_size):
        index = order[start : start + batch_size]
        yield self.train_x[index], self.train_y[index]


@contextlib.contextmanager
def _patched_out(parts: tuple[str, ...]) -> Iterator[None]:
    from workers.optim.schedules import LrSchedule
    from workers.tasks import DatasetTask

    saved = (runner_module._Loop._clip, LrSchedule.after_step, DatasetTask.epoch_batches)
    zero = torch.zeros(())
    if "gathered_batches" in parts:
        DatasetTask.epoch_batches = _indexed_batches  # type: ignore[method-assign]
    if "grad_norm" in parts:
        runner_module._Loop._clip = lambda self: zero  # type: ignore[method-assign]
    if "schedule" in parts:

        def count_only(self: LrSchedule) -> None:
            self.steps += 1

        LrSchedule.after_step = count_only  # type: ignore[method-assign]
    try:
        yield
    finally:
        runner_module._Loop._clip = saved[0]  # type: ignore[method-assign]
        LrSchedule.after_step = saved[1]  # type: ignore[method-assign]
        DatasetTask.epoch_batches = saved[2]  # type: ignore[method-assign]


def run_runner(
    store: Store,
    spec: TrialSpec,
    workdir: Path,
    *,
    sink_kind: str = "store",
    ckpt_on: bool = True,
    without: tuple[str, ...] = (),
) -> dict[str, float]:
    """workers.runner.train as workers/attempt.py wires it. The ablation variants swap the
    sink (sink_kind "none": NullSink; "inline": InlineSink) or the checkpoint store
    (ckpt_on False: NullCheckpoints) for the ones above; `without` names per-step parts to
    patch out of this process for the run (what-ifs, never source edits): "grad_norm"
    (_Loop._clip returns 0 without computing a norm), "schedule" (LrSchedule.after_step
    only counts the step), "gathered_batches" (batches indexed per step, as before)."""
    sink_on = sink_kind != "none"
    trial_id = new_trial(store, spec=spec.model_dump(mode="json"))
    claimed = store.trial_states.claim_next("bench", lambda t: t.id == trial_id)
    assert claimed is not None and claimed.id == trial_id
    project_id = claimed.project_id
    ckpt_dir = Path(tempfile.mkdtemp(prefix=f"ckpt-{trial_id}-", dir=workdir))
    checkpoints = CheckpointStore(ckpt_dir) if ckpt_on else NullCheckpoints(ckpt_dir)
    clock = _Clock()
    # The store calls the sink's and the heartbeat's threads make, with their own CPU time
    # (time.thread_time in the calling thread): what those threads take from the process.
    acct = {"write_cpu": 0.0, "write_wall": 0.0, "writes": 0, "beat_cpu": 0.0, "beats": 0}

    def write(rows: Any) -> None:
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            store.metrics.write(project_id, trial_id, rows)
        finally:
            acct["write_cpu"] += time.thread_time() - c0
            acct["write_wall"] += time.perf_counter() - w0
            acct["writes"] += 1

    def beat(step: int | None) -> Any:
        c0 = time.thread_time()
        try:
            return store.trial_states.heartbeat(trial_id, 0, step)
        finally:
            acct["beat_cpu"] += time.thread_time() - c0
            acct["beats"] += 1

    sink: MetricSink | NullSink | InlineSink = NullSink()
    if sink_kind == "store":
        sink = MetricSink(write)
    elif sink_kind == "inline":
        sink = InlineSink(write)
    control = TrialControl(beat)
    control.start()
    try:
        with clock.installed(), _patched_out(without):
            t_setup = time.perf_counter()
            result = runner_module.train(spec, sink=sink, checkpoints=checkpoints, control=control)
            sink.close()
            t1, c1 = time.perf_counter(), time.process_time()
    finally:
        control.close()
    assert result.outcome.value == "succeeded", result
    assert clock.ready is not None
    steps = spec.budget.max_steps
    assert steps is not None
    final_loss = float("nan")
    if sink_on:
        (train_loss,) = store.metrics.read(project_id, trial_id, ["train_loss"])
        (val_loss,) = store.metrics.read(project_id, trial_id, ["val_loss"])
        assert train_loss.steps == list(range(steps)), "train_loss points missing"
        assert len(val_loss.steps) == -(-steps // EVAL_EVERY), "val_loss points missing"
        final_loss = train_loss.values[-1]
    if ckpt_on and steps > CHECKPOINT_EVERY:
        assert (ckpt_dir / "checkpoint.pt").exists(), "no checkpoint written"
    return {
        "steps_s": t1 - clock.ready,
        "cpu_s": c1 - clock.ready_cpu,
        "setup_s": clock.ready - t_setup,
        "final_loss": final_loss,
        **{k: float(v) for k, v in acct.items()},
    }


# -- the experiment ---------------------------------------------------------------------
def check_same_data(seed: int) -> None:
    task = build_task(make_spec(10, seed))
    x_tr, y_tr, x_va, y_va = bare_data(seed)
    same = (
        torch.equal(task.train_x, x_tr)  # type: ignore[attr-defined]
        and torch.equal(task.train_y, y_tr)  # type: ignore[attr-defined]
        and torch.equal(task.val_x, x_va)  # type: ignore[attr-defined]
        and torch.equal(task.val_y, y_va)  # type: ignore[attr-defined]
    )
    assert same, "the bare loop's tensors differ from the digits task's"
    shapes = [tuple(p.shape) for p in task.model.parameters()]
    assert shapes == [(HIDDEN, 64), (HIDDEN,), (10, HIDDEN), (10,)], shapes


def profile_runner(store: Store, spec: TrialSpec, workdir: Path, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    run_runner(store, spec, workdir)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _per_call(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median seconds per call of `fn` over `repeats` timings of `calls` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def _flush_cost(store: Store, spec: TrialSpec) -> float:
    """Seconds for store.metrics.write of CHECKPOINT_EVERY steps' per-step points."""
    trial = store.trial_states.get(new_trial(store, spec=spec.model_dump(mode="json")))
    assert trial is not None
    steps = iter(range(0, 10**9, CHECKPOINT_EVERY))  # fresh steps each call: the COPY path

    def write() -> None:
        base = next(steps)
        points = [
            (name, base + i, 0.5, time.time())
            for i in range(CHECKPOINT_EVERY)
            for name in ("lr", "train_loss", "grad_norm")
        ]
        store.metrics.write(trial.project_id, trial.id, points)

    return _per_call(write, 5, repeats=3)


def components(stores: dict[str, Store], spec: TrialSpec, workdir: Path) -> list[list[str]]:
    """What the runner does per step beyond the bare loop, each timed alone (µs), and the
    per-checkpoint costs (ms) amortized over CHECKPOINT_EVERY steps."""
    from workers.optim import build_training
    from workers.runner import _Loop, _Position
    from workers.step_log import DRAIN_STEPS

    spec = make_spec(10**8, spec.seed)  # long enough that the schedule never stops stepping
    task = build_task(spec)
    t = build_training(spec, task)
    sink = MetricSink(lambda rows: None)
    loop = _Loop(spec, task, t, sink)
    batch = next(iter(task.epoch_batches(BATCH, torch.Generator().manual_seed(0))))
    loop.step(batch)  # grads (the flat buffer) and optimizer state exist from here on
    loss, norm = torch.tensor(0.5), torch.tensor(0.5)

    def record() -> None:
        for lrs, group in zip(loop.log.lrs, t.optimizer.param_groups, strict=True):
            lrs.append(group["lr"])
        loop.log.record(loss, norm)
        if len(loop.log.times) >= DRAIN_STEPS:
            loop.log.drain(sink)

    rows: list[list[str]] = []
    per_step = {
        "grad norm: GradBuffer.norm() (one vector_norm)": loop.grads.norm,
        "zero grads: GradBuffer.zero() (one zero_)": loop.grads.zero,
        "schedule.after_step() (constant: no scheduler)": t.schedule.after_step,
        f"lrs + StepLog.record, a drain every {DRAIN_STEPS} steps": record,
        "batch_examples + examples count": lambda: task.batch_examples(batch),
    }
    for label, fn in per_step.items():
        rows.append([label, f"{_per_call(fn, 2000) * 1e6:.1f}", "every step"])
    sink.close()

    ckpt = CheckpointStore(Path(tempfile.mkdtemp(prefix="ckpt-micro-", dir=workdir)))
    pos = _Position(step=200)

    def save() -> None:
        ckpt.save(loop.state(pos))

    def save_and_wait() -> None:
        save()
        ckpt.close()

    in_step = _per_call(save, 5, repeats=3)
    ckpt.close()
    whole = _per_call(save_and_wait, 5, repeats=3)
    rows.append(
        [
            "checkpoint in the training thread: state_dicts + torch.save to memory",
            f"{in_step * 1e6 / CHECKPOINT_EVERY:.1f}",
            f"{in_step * 1e3:.2f} ms every {CHECKPOINT_EVERY} steps",
        ]
    )
    rows.append(
        [
            "checkpoint file work, background thread: write + fsync + rename",
            "-",
            f"{(whole - in_step) * 1e3:.2f} ms every {CHECKPOINT_EVERY} steps (GIL released)",
        ]
    )
    points = 3 * CHECKPOINT_EVERY
    for b, store in stores.items():
        cost = _flush_cost(store, spec)
        rows.append(
            [
                f"store write of {points} points ({b}), sink thread",
                f"{cost * 1e6 / CHECKPOINT_EVERY:.1f}",
                f"{cost * 1e3:.1f} ms per {CHECKPOINT_EVERY} steps' points, in the sink's "
                "thread (it shares the GIL with the training thread)",
            ]
        )
    return rows


# -- reading a py-spy profile ------------------------------------------------------------
SPY_CATEGORIES = [  # (category, substrings of a frame below the loop), first match wins
    ("setup (excluded)", ("build_training", "build_task", "CheckpointStore.load", "bare_data")),
    ("setup (excluded)", ("Optimizer.__init__", "Module.__init__", "Linear.__init__")),
    ("checkpoint: torch.save + fsync", ("CheckpointStore.save",)),
    ("checkpoint: state_dicts", ("_Loop.state",)),
    ("sink flush/close (waits for the writer)", ("MetricSink.flush", "MetricSink.close")),
    ("checkpoint close (waits for the last write)", ("CheckpointStore.close",)),
    ("grad norm (_Loop._clip)", ("_Loop._clip",)),
    ("zero grads (GradBuffer.zero)", ("GradBuffer.zero",)),
    ("per-step metrics (StepLog)", ("StepLog.",)),
    ("evaluate", ("_Loop.evaluate", "bare_evaluate")),
    ("MetricSink.add", ("MetricSink.add",)),
    ("schedule.after_step", ("LrSchedule.after_step",)),
    ("backward", ("backward",)),
    ("zero_grad", ("zero_grad",)),
    ("optimizer.step", ("Adam.step", "_single_tensor_adam", "optimizer.py", "eval_frame.py")),
    ("forward + loss", ("_call_impl", "forward", "cross_entropy", "DatasetTask.loss")),
    ("batches (randperm, indexing)", ("_batches", "epoch_batches")),
]


def spy_report(path: Path, steps_per_variant: int, rate: float) -> str:
    """Where each loop's time goes, from `py-spy record --threads --format raw` of this
    script (bare + one runner variant): µs per step by category, main thread only (the
    sink and heartbeat threads' own cost is measured by run_runner itself)."""
    from collections import Counter

    loops = {"bare": Counter(), "runner": Counter()}  # type: ignore[var-annotated]
    lines = [line.rpartition(" ") for line in path.read_text().splitlines()]
    # The main thread: its samples are labelled "thread (TID): MainThread" (some lack the name).
    main = {st.split(";", 1)[0].split(")")[0] for st, _, _ in lines if "MainThread" in st}
    for stack, _, count in lines:
        frames = stack.split(";")
        if not stack or frames[0].split(")")[0] not in main:
            continue
        if any(f.startswith("run_bare ") for f in frames):
            loop, below = "bare", frames[1 + _index(frames, "run_bare ") :]
        elif any(f.startswith("train (workers/runner.py") for f in frames):
            loop, below = "runner", frames[1 + _index(frames, "train (workers/runner.py") :]
        else:
            continue
        text = ";".join(below)
        category = "loop body (Python, indexing)"
        for name, needles in SPY_CATEGORIES:
            if any(n in text for n in needles):
                category = name
                break
        loops[loop][category] += int(count)
    us = 1e6 / rate / steps_per_variant
    names = sorted(
        {c for counter in loops.values() for c in counter},
        key=lambda c: -(loops["runner"][c] - loops["bare"][c]),
    )
    rows = [
        [
            c,
            f"{loops['bare'][c] * us:.0f}",
            f"{loops['runner'][c] * us:.0f}",
            f"{(loops['runner'][c] - loops['bare'][c]) * us:+.0f}",
        ]
        for c in names
    ]
    steady = [c for c in names if not c.startswith("setup")]
    rows.append(
        [
            "**total (setup excluded)**",
            f"**{sum(loops['bare'][c] for c in steady) * us:.0f}**",
            f"**{sum(loops['runner'][c] for c in steady) * us:.0f}**",
            f"**{sum(loops['runner'][c] - loops['bare'][c] for c in steady) * us:+.0f}**",
        ]
    )
    return table(["where (main thread)", "bare µs/step", "runner µs/step", "difference"], rows)


def _index(frames: list[str], prefix: str) -> int:
    return next(i for i, f in enumerate(frames) if f.startswith(prefix))


def _paired(
    runs: list[dict[str, float]], bare: list[dict[str, float]], key: str = "steps_s"
) -> list[float]:
    """Per repeat, bare's time over this variant's (= its steps/s relative to bare's): runs
    of one repeat are seconds apart, so drift in the machine's speed cancels out. With key
    "cpu_s": the same ratio of the process's CPU time (all its threads), which other
    processes competing for the CPUs do not inflate as they do wall time."""
    return [b[key] / r[key] for r, b in zip(runs, bare, strict=True)]


def _loss(value: float) -> str:
    return "-" if value != value else f"{value:.4f}"  # NaN: the no-op sink stored nothing


def main() -> None:
    global CHECKPOINT_EVERY
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--checkpoint-every", type=int, default=CHECKPOINT_EVERY, help="runner checkpoints"
    )
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also: ablation variants (no-op sink / no-op checkpoints) in the interleaved\n"
        "repeats, per-step component timings, and a cProfile of one runner run per store",
    )
    p.add_argument("--profile-top", type=int, default=30)
    p.add_argument(
        "--spy-report",
        type=Path,
        metavar="RAW",
        help="only read a py-spy raw profile of this script and print where the time goes:\n"
        "  py-spy record --rate 200 --nonblocking --threads --format raw -o RAW -- \\\n"
        "    .venv/bin/python bench/runner_overhead.py --backends postgres --steps S --repeats R\n"
        "then: bench/runner_overhead.py --spy-report RAW --steps S --repeats R",
    )
    p.add_argument("--spy-rate", type=float, default=200.0, help="the --rate given to py-spy")
    args = p.parse_args()
    CHECKPOINT_EVERY = args.checkpoint_every
    if args.spy_report is not None:
        # Every variant ran a 400-step warm-up and `repeats` timed runs.
        steps = WARM_STEPS + args.steps * args.repeats
        print(spy_report(args.spy_report, steps, args.spy_rate))
        return
    if args.repeats < 1 or args.steps < EVAL_EVERY:
        p.error("--repeats must be >= 1 and --steps >= 50")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            p.error(f"unknown backend {b!r}")

    torch.set_num_threads(1)
    print(f"# runner overhead: {environment_line()}\n", flush=True)
    check_same_data(args.seed)
    spec = make_spec(args.steps, args.seed)

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lrlab-bench-")))
        stores: dict[str, Store] = {}
        for b in backends:
            if b == "sqlite":
                url = f"sqlite:///{workdir / 'lrlab.db'}"
            else:
                url = stack.enter_context(pg_database(args.pg_admin_url, "lrlab_bench_runner"))
            stores[b] = open_store(url)
            stack.callback(stores[b].close)

        variants: dict[str, Callable[[TrialSpec], dict[str, float]]] = {
            "bare loop": lambda s: run_bare(s.budget.max_steps or 0, s.seed)
        }
        if args.profile:
            # Ablations on the last store named (postgres by default): what each part costs.
            b, last = list(stores.items())[-1]
            ablations: dict[str, dict[str, Any]] = {
                "runner, no-op sink, no checkpoints": {"sink_kind": "none", "ckpt_on": False},
                "runner, no-op sink, no checkpoints, no grad norm (what-if)": {
                    "sink_kind": "none",
                    "ckpt_on": False,
                    "without": ("grad_norm",),
                },
                "runner, no-op sink, no checkpoints, no scheduler step (what-if)": {
                    "sink_kind": "none",
                    "ckpt_on": False,
                    "without": ("schedule",),
                },
                f"runner, {b} sink, no checkpoints": {"ckpt_on": False},
                f"runner, {b} written inline (what-if), no checkpoints": {
                    "sink_kind": "inline",
                    "ckpt_on": False,
                },
                f"runner, {b} store, batches indexed per step (what-if)": {
                    "without": ("gathered_batches",),
                },
            }
            for label, kw in ablations.items():
                variants[label] = lambda s, kw=kw: run_runner(last, s, workdir, **kw)  # type: ignore[misc]
            variants["bare loop, batches gathered per epoch (what-if)"] = lambda s: run_bare(
                s.budget.max_steps or 0, s.seed, gathered=True
            )
        for b, store in stores.items():
            variants[f"runner, {b} store"] = (
                lambda s, store=store: run_runner(store, s, workdir)  # type: ignore[misc]
            )
        names = list(variants)
        warm = make_spec(WARM_STEPS, args.seed)
        for name in names:  # untimed: imports, allocator, first connections, page cache
            variants[name](warm)
        results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        for rep in range(args.repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                results[name].append(variants[name](spec))
            line = ", ".join(f"{n}: {args.steps / results[n][-1]['steps_s']:.0f}/s" for n in names)
            print(f"repeat {rep + 1}/{args.repeats}: {line}", file=sys.stderr, flush=True)

        med = {
            n: {k: statistics.median(r[k] for r in results[n]) for k in ("steps_s", "setup_s")}
            for n in names
        }
        bare_rate = args.steps / med["bare loop"]["steps_s"]
        rows = []
        for n in names:
            steps_s, setup_s = med[n]["steps_s"], med[n]["setup_s"]
            rate = args.steps / steps_s
            each = sorted(args.steps / r["steps_s"] for r in results[n])
            paired = _paired(results[n], results["bare loop"])
            cpu = _paired(results[n], results["bare loop"], "cpu_s")
            rows.append(
                [
                    n,
                    f"{rate:,.0f}",
                    f"{min(each):,.0f}-{max(each):,.0f}",
                    f"{rate / bare_rate:.1%}",
                    f"{statistics.median(paired):.1%} ({min(paired):.0%}-{max(paired):.0%})",
                    f"{statistics.median(cpu):.1%}",
                    f"{1e6 / rate:.0f}",
                    f"{setup_s * 1e3:.0f}",
                    f"{args.steps / (steps_s + setup_s):,.0f}",
                    _loss(results[n][-1]["final_loss"]),
                ]
            )
        print(
            f"\n{args.steps} steps, digits MLP 64-{HIDDEN}-10, batch {BATCH}, Adam, 1 thread, "
            f"eval every {EVAL_EVERY}, checkpoint every {CHECKPOINT_EVERY}; "
            f"median of {args.repeats} interleaved repeats\n"
        )
        print(
            table(
                [
                    "loop",
                    "steps/s (median)",
                    "range",
                    "vs bare (medians)",
                    "vs bare, paired by repeat",
                    "vs bare, CPU time, paired",
                    "µs/step",
                    "setup ms",
                    "steps/s incl. setup",
                    "last train_loss",
                ],
                rows,
            )
        )
        verdicts = []
        for n in names[1:]:
            if "no checkpoints" in n or "what-if" in n or n.startswith("bare"):
                continue  # ablations: no target
            ratio = statistics.median(_paired(results[n], results["bare loop"]))
            cpu = statistics.median(_paired(results[n], results["bare loop"], "cpu_s"))
            ok = "meets" if ratio >= TARGET else "MISSES"
            verdicts.append(
                f"{n}: {ratio:.1%} of bare, median of paired ratios ({ok} the {TARGET:.0%} "
                f"target; by CPU time {cpu:.1%})"
            )
        print("\n" + "; ".join(verdicts))
        bg_rows = []
        for n in names[1:]:
            if n.startswith("bare"):
                continue  # no store, no heartbeats
            runs = results[n]
            k = 1000 / args.steps
            writes = statistics.median(r["writes"] for r in runs)
            beats = statistics.median(r["beats"] for r in runs)
            per_beat = statistics.median(r["beat_cpu"] / max(1, r["beats"]) for r in runs)
            bg_rows.append(
                [
                    n,
                    f"{writes:.0f}",
                    f"{statistics.median(r['write_cpu'] for r in runs) * 1e3 * k:.1f}",
                    f"{statistics.median(r['write_wall'] for r in runs) * 1e3 * k:.1f}",
                    f"{beats:.0f}",
                    f"{per_beat * 1e3:.1f}",
                ]
            )
        print(
            "\nStore calls from the runner's other threads per run (medians; CPU = "
            "time.thread_time of the calling thread):\n"
        )
        print(
            table(
                [
                    "loop",
                    "metric writes",
                    "write CPU ms / 1000 steps",
                    "write wall ms / 1000 steps",
                    "heartbeats",
                    "CPU ms / heartbeat",
                ],
                bg_rows,
            )
        )
        print(f"load average at end: {load_average()}")

        if args.profile:
            print("\n## What the runner adds per step, each part timed alone\n")
            print(table(["part", "µs/step", "note"], components(stores, spec, workdir)))
            for b, store in stores.items():
                print(f"\n## cProfile of one runner run ({b} store), by own time\n")
                print("```")
                print(profile_runner(store, spec, workdir, args.profile_top))
                print("```")


if __name__ == "__main__":
    main()
