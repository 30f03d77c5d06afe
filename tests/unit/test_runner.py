"""The training loop, in process: metrics, lr schedules, epochs, determinism, resuming."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from services.launcher import RunOutcome
from services.specs import TrialSpec
from workers.checkpoints import CheckpointStore
from workers.optim import build_training
from workers.runner import TrainResult, train
from workers.tasks import build_task


class MemorySink:
    def __init__(self, stop_at: int | None = None, control: Any = None) -> None:
        self.points: dict[str, dict[int, float]] = {}
        self.flushes = 0
        self._stop_at, self._control = stop_at, control

    def add(self, name: str, step: int, value: float) -> None:
        self.points.setdefault(name, {})[step] = value
        if self._stop_at is not None and name == "train_loss" and step == self._stop_at:
            self._control.stop_reason = "test stop"

    def flush(self) -> None:
        self.flushes += 1

    def series(self, name: str) -> list[float]:
        return [v for _, v in sorted(self.points.get(name, {}).items())]


class Control:
    stop_reason: str | None = None
    last_step: int | None = None


def run(spec: dict[str, Any], tmp_path: Path, **sink_args: Any) -> tuple[TrainResult, MemorySink]:
    control = Control()
    sink = MemorySink(control=control, **sink_args)
    result = train(
        TrialSpec.model_validate(spec),
        sink=sink,
        checkpoints=CheckpointStore(tmp_path / "ckpt"),
        control=control,
    )
    return result, sink


def digits(**over: Any) -> dict[str, Any]:
    return {"task": "digits", "budget": {"max_steps": 60}, "eval_every": 10, **over}


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
    for name in ("train_loss", "lr", "grad_norm"):
        assert second.points[name] == {s: whole.points[name][s] for s in range(40, 100)}
    assert first.points["train_loss"] == {s: whole.points["train_loss"][s] for s in range(62)}


def test_a_diverging_run_stops_at_the_first_non_finite_loss(tmp_path: Path) -> None:
    result, sink = run(digits(optimizer={"name": "sgd", "lr": 1.0e4}), tmp_path)
    losses = sink.series("train_loss")
    assert result.outcome is RunOutcome.DIVERGED
    assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    assert result.last_step == len(losses) - 1 < 59
    assert result.detail is not None and f"step {result.last_step}" in result.detail


def test_clipping_bounds_the_update_but_grad_norm_is_measured_before_it(tmp_path: Path) -> None:
    spec = digits(regularization={"grad_clip_norm": 0.01}, optimizer={"name": "sgd", "lr": 0.1})
    _, sink = run(spec, tmp_path)
    assert max(sink.series("grad_norm")) > 0.01  # the norm before clipping is what is recorded


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
