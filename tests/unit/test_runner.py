"""The training loop, in process: metrics, lr schedules, epochs, determinism, resuming."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lrlab.torch as lrlab_torch
import pytest
import torch

from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec
from tests.support.training import Control, MemorySink, digits, run
from workers import step_log
from workers.checkpoints import CheckpointStore
from workers.optim import build_training, layer_norms
from workers.optim.grads import GradBuffer
from workers.optim.layer_norms import LayerNorms
from workers.runner import train
from workers.sink import MetricSink, Row
from workers.tasks import build_task
from workers.tasks.base import DatasetTask

SCHEDULES = [
    {"name": "constant"},
    {"name": "constant", "warmup_steps": 15},
    {"name": "step", "step_size": 10, "gamma": 0.5},
    {"name": "multistep", "milestones": [10, 30], "gamma": 0.3},
    {"name": "exponential", "gamma": 0.95, "warmup_steps": 5},
    {"name": "cosine"},
    {"name": "cosine", "T_max": 20, "eta_min": 0.001, "warmup_steps": 10},
    {"name": "cosine_restarts", "T_0": 10, "T_mult": 2},
    {"name": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "triangular2"},
    {"name": "one_cycle", "max_lr": 0.2, "pct_start": 0.25},
    {"name": "plateau", "factor": 0.5, "patience": 0, "warmup_steps": 10},
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: f"{s['name']}-{len(s)}")
def test_recorded_lr_follows_the_torch_schedule_step_by_step(
    schedule: dict[str, Any], tmp_path: Path
) -> None:
    spec = digits(optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9}, schedule=schedule)
    result, sink = run(spec, tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED
    recorded = sink.series("lr")
    # The reference: the same torch schedulers, stepped once per step (and, for plateau,
    # fed the val losses the run recorded at its evaluations).
    parsed = TrialSpec.model_validate(spec)
    t = build_training(parsed, build_task(parsed))
    val = sink.points["val_loss"]
    expected = []
    for step in range(60):
        expected.append(t.optimizer.param_groups[0]["lr"])
        t.optimizer.step()  # no gradients: keeps torch's step-order check quiet
        t.schedule.after_step()
        if step in val:
            t.schedule.after_eval(val[step])
    assert recorded == pytest.approx(expected, rel=1e-12, abs=0)
    assert len(set(recorded)) > 1 or (schedule["name"] == "constant" and len(schedule) == 1)


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"name": "adagrad", "lr": 0.05},
        {"name": "rmsprop", "lr": 0.001, "centered": True},
        {"name": "adam", "lr": 0.003, "amsgrad": True},
        {"name": "adamw", "lr": 0.003},
        {"name": "lbfgs", "lr": 0.5, "history_size": 5, "max_iter": 4},
    ],
    ids=lambda o: o["name"],
)
def test_every_optimizer_trains(optimizer: dict[str, Any], tmp_path: Path) -> None:
    spec = digits(optimizer=optimizer, budget={"max_steps": 30}, batch_size=128)
    result, sink = run(spec, tmp_path)
    losses = sink.series("train_loss")
    assert result.outcome is RunOutcome.SUCCEEDED and len(losses) == 30
    assert losses[-1] < losses[0] * 0.8


@pytest.mark.parametrize(
    ("batch_size", "epochs", "steps"), [(1, 1, 1437), (32, 2, 90), (500, 2, 6), ("full", 3, 3)]
)
def test_steps_per_epoch_follow_the_batch_size(
    batch_size: int | str, epochs: int, steps: int, tmp_path: Path
) -> None:
    spec = digits(batch_size=batch_size, budget={"epochs": epochs}, eval_every=10_000)
    _, sink = run(spec, tmp_path)
    assert len(sink.series("train_loss")) == steps


def test_same_spec_and_seed_give_the_same_curve(tmp_path: Path) -> None:
    spec = digits(regularization={"dropout": 0.2}, seed=7)
    _, first = run(spec, tmp_path / "a")
    _, second = run(spec, tmp_path / "b")
    _, other_seed = run({**spec, "seed": 8}, tmp_path / "c")
    assert first.points == {k: v for k, v in second.points.items() if k != "samples_per_sec"} | {
        "samples_per_sec": first.points["samples_per_sec"]
    }
    assert first.series("train_loss") != other_seed.series("train_loss")


def test_a_resumed_run_continues_exactly_where_the_checkpoint_left_off(tmp_path: Path) -> None:
    spec = digits(
        budget={"max_steps": 100},
        checkpoint_every=40,
        regularization={"dropout": 0.3},
        schedule={"name": "cosine", "warmup_steps": 10},
    )
    _, whole = run(spec, tmp_path / "whole")
    stopped, first = run(spec, tmp_path / "split", stop_at=61)
    assert stopped.outcome is RunOutcome.CANCELLED
    resumed, second = run(spec, tmp_path / "split")
    assert resumed.outcome is RunOutcome.SUCCEEDED
    # Stopped at step 61, it resumes from its last checkpoint (step 40) and from there on
    # matches the run that was never interrupted, dropout masks included.
    assert min(second.points["train_loss"]) == 40
    for name in ("train_loss", "lr", "grad_norm", "grad_norm/00.0", "grad_norm/01.3"):
        assert second.points[name] == {s: v for s, v in whole.points[name].items() if s >= 40}
    assert first.points["train_loss"] == {s: whole.points["train_loss"][s] for s in range(62)}


def test_a_diverging_run_stops_at_the_first_non_finite_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = digits(optimizer={"name": "sgd", "lr": 1.0e4}, budget={"max_steps": 400})
    spec["eval_every"] = 1000  # no evaluation to end a block early
    steps_run = 0
    real_loss = DatasetTask.loss

    def counted(self: DatasetTask, batch: Any) -> torch.Tensor:
        nonlocal steps_run
        steps_run += 1
        return real_loss(self, batch)

    monkeypatch.setattr(DatasetTask, "loss", counted)
    result, sink = run(spec, tmp_path)
    losses = sink.series("train_loss")
    assert result.outcome is RunOutcome.DIVERGED
    assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    assert result.last_step == len(losses) - 1
    assert result.detail is not None and f"step {result.last_step}" in result.detail
    # Blocks of steps are checked as they are drained: the run went on at most a block
    # past the first non-finite loss, and recorded nothing after it.
    assert steps_run - 1 - result.last_step < step_log.DRAIN_STEPS
    assert max(sink.points["grad_norm"]) == result.last_step
    assert max(sink.points["grad_norm/00.0"]) <= result.last_step


def test_layer_decay_records_one_lr_per_group(tmp_path: Path) -> None:
    spec = digits(regularization={"layer_decay": 0.5}, task={"name": "digits", "hidden": [32, 32]})
    _, sink = run(spec, tmp_path)
    names = {n for n in sink.points if n.startswith("lr")}
    assert names == {"lr", "lr/1", "lr/2"}


def test_swa_reports_the_averaged_model(tmp_path: Path) -> None:
    spec = digits(regularization={"swa": {"start_step": 30, "swa_lr": 0.01}})
    result, sink = run(spec, tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED
    assert list(sink.points["swa_val_loss"]) == [59]
    assert math.isfinite(sink.points["swa_val_loss"][59])


def test_the_runner_uses_the_thread_count_it_is_given(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    result, _ = run(digits(budget={"max_steps": 5}), tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED and torch.get_num_threads() == 1


def textbook_curve(spec: dict[str, Any]) -> tuple[list[float], list[float]]:
    """train_loss and grad_norm of `spec` (one epoch or less, no regularization) from the
    loop torch's docs write: zero_grad(set_to_none=True), backward, get_total_norm, step."""
    parsed = TrialSpec.model_validate(spec)
    torch.manual_seed(parsed.seed)
    task = build_task(parsed)
    t = build_training(parsed, task)
    params = [p for p in task.model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(parsed.seed)
    losses: list[float] = []
    norms: list[float] = []
    for batch in itertools.islice(task.epoch_batches(t.batch_size, generator), t.total_steps):
        seen: list[tuple[float, float]] = []

        def closure(batch: Any = batch, seen: list[tuple[float, float]] = seen) -> torch.Tensor:
            t.optimizer.zero_grad(set_to_none=True)
            loss = task.loss(batch)
            loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            seen.append((loss.item(), torch.nn.utils.get_total_norm(grads).item()))
            return loss

        if isinstance(t.optimizer, torch.optim.LBFGS):
            t.optimizer.step(closure)  # type: ignore[arg-type]
        else:
            closure()
            t.optimizer.step()
        losses.append(seen[0][0])
        norms.append(seen[0][1])
        t.schedule.after_step()
    return losses, norms


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "adam", "lr": 0.003},
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
        {"name": "rmsprop", "lr": 0.001},
        {"name": "lbfgs", "lr": 0.5, "history_size": 5, "max_iter": 4},
    ],
    ids=lambda o: o["name"],
)
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_flat_gradient_buffer_trains_the_textbook_curve(
    optimizer: dict[str, Any], model: str, tmp_path: Path
) -> None:
    spec = digits(
        task={"name": "digits", "model": model, "hidden": [32]},
        optimizer=optimizer,
        schedule={"name": "cosine"},
        budget={"max_steps": 25},
    )
    _, sink = run(spec, tmp_path)
    losses, norms = textbook_curve(spec)
    # Gradients accumulated into a zeroed buffer are bit for bit the ones autograd hands a
    # None .grad, so the whole curve is identical; the norm is taken in another order.
    assert sink.series("train_loss") == losses
    assert sink.series("grad_norm") == pytest.approx(norms, rel=1e-5)


class GatedWriter:
    """A store for a real MetricSink. Closed, it holds every write back (as a stalled
    database would) until `released`, then drops it (as a killed worker would)."""

    def __init__(self, stored: dict[str, dict[int, float]], open_: bool = True) -> None:
        self.stored, self.open = stored, open_
        self.released = threading.Event()

    def __call__(self, rows: Sequence[Row]) -> None:
        if not self.open:
            assert self.released.wait(timeout=60), "the test never released the writer"
            return
        for name, step, value, _ in rows:
            self.stored.setdefault(name, {})[step] = value


class Kill(Exception):
    """Stands in for the worker dying: raised from the control, out of the loop."""


class KillingControl(Control):
    @property
    def stop_reason(self) -> str | None:
        if (
            self.stop_at is not None
            and self.last_step is not None
            and self.last_step >= self.stop_at
        ):
            raise Kill
        return None


def test_points_unsent_at_a_checkpoint_are_stored_by_the_resumed_run(tmp_path: Path) -> None:
    spec = TrialSpec.model_validate(
        digits(budget={"max_steps": 100}, checkpoint_every=40, eval_every=20)
    )
    _, whole = run(spec.model_dump(), tmp_path / "whole")
    stored: dict[str, dict[int, float]] = {}
    ckpt = CheckpointStore(tmp_path / "split")
    held = GatedWriter(stored, open_=False)
    first_sink = MetricSink(held, max_age_seconds=60)
    with pytest.raises(Kill):
        train(spec, sink=first_sink, checkpoints=ckpt, control=KillingControl(61))
    # Nothing reached the store before the "kill": the checkpoint at 40 carries steps 0-39.
    assert stored == {}
    held.released.set()
    first_sink.close()

    second_sink = MetricSink(GatedWriter(stored))
    resumed = train(
        spec, sink=second_sink, checkpoints=CheckpointStore(tmp_path / "split"), control=Control()
    )
    second_sink.close()
    assert resumed.outcome is RunOutcome.SUCCEEDED
    for name in ("train_loss", "grad_norm", "lr"):
        assert stored[name] == whole.points[name], name
    assert sorted(stored["val_loss"]) == [19, 39, 59, 79, 99]


def test_the_first_step_reaches_the_sink_alone_and_at_once(tmp_path: Path) -> None:
    blocks: list[tuple[int, int]] = []

    class Blocks(MemorySink):
        def add_steps(
            self, first: int, columns: dict[str, list[float]], times: list[float]
        ) -> None:
            if "train_loss" in columns:  # the per-step block; per-layer samples come apart
                blocks.append((first, len(times)))

        def unsent(self) -> list[Any]:
            return []

    train(
        TrialSpec.model_validate(digits(budget={"max_steps": 100}, eval_every=100)),
        sink=Blocks(),
        checkpoints=CheckpointStore(tmp_path),
        control=Control(),
    )
    assert blocks[0] == (0, 1)
    assert sum(n for _, n in blocks) == 100
    assert all(n <= step_log.DRAIN_STEPS for _, n in blocks)
    assert [first for first, _ in blocks] == sorted(first for first, _ in blocks)


def test_per_layer_gradient_norms_are_recorded_every_few_steps_before_clipping(
    tmp_path: Path,
) -> None:
    spec = digits(
        task={"name": "digits", "hidden": [32, 16]},
        optimizer={"name": "sgd", "lr": 0.1},
        regularization={"grad_clip_norm": 0.01},
    )
    _, sink = run(spec, tmp_path)
    model = build_task(TrialSpec.model_validate(spec)).model
    names = [n for n in sink.points if n.startswith("grad_norm/")]
    # One series per Linear (weight and bias together), indexed input -> output, named as
    # the SDK's helper names them.
    assert names == ["grad_norm/00.0", "grad_norm/01.2", "grad_norm/02.4"]
    assert names == lrlab_torch.layer_names(model)
    sampled = list(range(0, 60, layer_norms.LAYER_EVERY))
    for name in names:
        assert sorted(sink.points[name]) == sampled
        assert all(v > 0 for v in sink.points[name].values())
    # Measured before clipping, on the same gradients as grad_norm: together they are it.
    for step in sampled:
        together = math.sqrt(sum(sink.points[n][step] ** 2 for n in names))
        assert together == pytest.approx(sink.points["grad_norm"][step], rel=1e-5)
        assert together > 0.01


def test_per_layer_norms_are_the_same_on_the_flat_buffer_and_per_tensor() -> None:
    task = build_task(TrialSpec.model_validate(digits(task={"name": "digits", "hidden": [8]})))
    params = list(task.model.parameters())  # weight, bias of layer 0, then of layer 1
    task.loss(next(iter(task.epoch_batches(16, torch.Generator().manual_seed(0))))).backward()
    norms = [float(torch.linalg.vector_norm(p.grad)) for p in params if p.grad is not None]
    flat = GradBuffer(params)
    flat.norm()
    assert flat.flat is not None
    on_flat = LayerNorms(task.model).measure(flat).tolist()
    assert on_flat == pytest.approx([math.hypot(*norms[:2]), math.hypot(*norms[2:])], rel=1e-6)
    # Gradients per tensor (not all fit one buffer): a parameter without one counts as 0.
    params[3].grad = None
    loose = GradBuffer(params)
    loose.norm()
    assert loose.flat is None
    on_tensors = LayerNorms(task.model).measure(loose).tolist()
    assert on_tensors == pytest.approx([math.hypot(*norms[:2]), norms[2]], rel=1e-6)
