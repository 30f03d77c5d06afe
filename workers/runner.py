"""The training loop of one trial: build, (resume,) train, evaluate, checkpoint, report.

Metric names follow the contract in DESIGN.md: every step train_loss, lr (lr/<g> for other
param groups) and grad_norm (global L2 norm before clipping); every evaluation the task's
val_* metrics and samples_per_sec; swa_val_loss at the end of an SWA run. A non-finite
training loss is recorded and ends the trial as diverged at once.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from services.launcher import RunOutcome
from services.specs import TrialSpec
from workers.checkpoints import CheckpointStore
from workers.optim import Training, build_training, l1_penalty, l2_penalty
from workers.tasks import Task, build_task


class Sink(Protocol):
    def add(self, name: str, step: int, value: float) -> None: ...
    def flush(self) -> None: ...


class Control(Protocol):
    stop_reason: str | None
    last_step: int | None


@dataclass(frozen=True)
class TrainResult:
    outcome: RunOutcome
    detail: str | None
    last_step: int | None  # the last step index that ran (None if none did)


@dataclass
class _Position:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch: int = 0  # batches of this epoch done
    epoch_rng: torch.Tensor | None = None  # generator state at the start of this epoch


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_names(n_groups: int) -> list[str]:
    return ["lr"] + [f"lr/{g}" for g in range(1, n_groups)]


class _Loop:
    """State shared by the step, eval and checkpoint code of one run."""

    def __init__(self, spec: TrialSpec, task: Task, t: Training, sink: Sink) -> None:
        self.spec, self.task, self.t, self.sink = spec, task, t, sink
        self.params = [p for p in task.model.parameters() if p.requires_grad]
        self.lr_names = _lr_names(len(t.optimizer.param_groups))
        self.lbfgs = isinstance(t.optimizer, torch.optim.LBFGS)
        self.clip_norm = spec.regularization.grad_clip_norm
        self.clip_value = spec.regularization.grad_clip_value
        self.examples = 0
        self.window_start = time.perf_counter()

    def _objective(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        loss = self.task.loss(batch)
        total = loss
        if self.t.l1:
            total = total + l1_penalty(self.task.model, self.t.l1)
        if self.t.l2_in_loss:
            total = total + l2_penalty(self.task.model, self.t.l2_in_loss)
        return loss, total

    def _clip(self) -> torch.Tensor:
        grads = [p.grad for p in self.params if p.grad is not None]
        # The same global L2 norm as torch.nn.utils.get_total_norm, without its per-call
        # bookkeeping: ~30 us instead of ~65 us on a small model, paid every step.
        norm: torch.Tensor = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if self.clip_norm is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip_norm, norm)
        elif self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.params, self.clip_value)
        return norm

    def step(self, step: int, batch: Any) -> float:
        """One optimizer step; records its metrics and returns the training loss."""
        for name, group in zip(self.lr_names, self.t.optimizer.param_groups, strict=True):
            self.sink.add(name, step, float(group["lr"]))
        opt = self.t.optimizer
        if self.lbfgs:
            seen: dict[str, torch.Tensor] = {}

            def closure() -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                loss, total = self._objective(batch)
                total.backward()
                norm = self._clip()
                seen.setdefault("loss", loss.detach())  # the loss before this step's update
                seen.setdefault("norm", norm)
                return total

            opt.step(closure)  # type: ignore[arg-type]  # LBFGS takes a tensor closure
            loss_t, norm_t = seen["loss"], seen["norm"]
        else:
            opt.zero_grad(set_to_none=True)
            loss_t, total = self._objective(batch)
            total.backward()
            norm_t = self._clip()
            opt.step()
        loss, norm = loss_t.detach().item(), norm_t.item()
        self.sink.add("train_loss", step, loss)
        self.sink.add("grad_norm", step, norm)
        self.examples += self.task.batch_examples(batch)
        self.t.schedule.after_step()
        if self.t.swa is not None:
            self.t.swa.after_step(self.t.schedule.steps)
        return loss

    def evaluate(self, step: int) -> None:
        now = time.perf_counter()
        metrics = self.task.evaluate()
        for name, value in metrics.items():
            self.sink.add(name, step, value)
        elapsed = now - self.window_start
        if elapsed > 0 and self.examples:
            self.sink.add("samples_per_sec", step, self.examples / elapsed)
        self.examples = 0
        if "val_loss" in metrics:
            self.t.schedule.after_eval(metrics["val_loss"])
        self.window_start = time.perf_counter()  # evaluation time is not training time

    def state(self, pos: _Position) -> dict[str, Any]:
        return {
            "position": dataclasses.asdict(pos),
            "model": self.task.model.state_dict(),
            "optimizer": self.t.optimizer.state_dict(),
            "schedule": self.t.schedule.state_dict(),
            "swa": None if self.t.swa is None else self.t.swa.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> _Position:
        # Order matters: the schedule was built over the optimizer (see LrSchedule).
        self.task.model.load_state_dict(state["model"])
        self.t.optimizer.load_state_dict(state["optimizer"])
        self.t.schedule.load_state_dict(state["schedule"])
        if self.t.swa is not None and state["swa"] is not None:
            self.t.swa.load_state_dict(state["swa"])
        return _Position(**state["position"])


def _batches(task: Task, t: Training, generator: torch.Generator, pos: _Position) -> Iterator[Any]:
    """Batches from `pos` on, epoch after epoch; `pos` is kept current for checkpoints."""
    while True:
        if pos.epoch_rng is None:
            pos.epoch_rng = generator.get_state()
        else:
            generator.set_state(pos.epoch_rng)
        for index, batch in enumerate(task.epoch_batches(t.batch_size, generator)):
            if index >= pos.batch:
                pos.batch = index + 1  # counted as done once handed out: a checkpoint
                yield batch  # taken after this step resumes with the next batch
        pos.epoch, pos.batch, pos.epoch_rng = pos.epoch + 1, 0, None


def train(
    spec: TrialSpec,
    *,
    sink: Sink,
    checkpoints: CheckpointStore,
    control: Control,
    device: torch.device | None = None,
) -> TrainResult:
    _seed_everything(spec.seed)
    task = build_task(spec)
    task.to(device or torch.device("cpu"))
    t = build_training(spec, task)
    loop = _Loop(spec, task, t, sink)
    generator = torch.Generator().manual_seed(spec.seed)

    saved = checkpoints.load()  # restores the global RNGs too
    pos = loop.restore(saved) if saved is not None else _Position()
    last_eval = pos.step - 1 if saved is not None else -1
    task.model.train()
    batches = _batches(task, t, generator, pos)
    while pos.step < t.total_steps:
        if control.stop_reason is not None:
            sink.flush()
            return TrainResult(RunOutcome.CANCELLED, control.stop_reason, pos.step - 1)
        step = pos.step
        loss = loop.step(step, next(batches))
        pos.step += 1
        control.last_step = step
        if not math.isfinite(loss):
            sink.flush()
            return TrainResult(
                RunOutcome.DIVERGED, f"diverged: train_loss is {loss} at step {step}", step
            )
        if pos.step % spec.eval_every == 0 or pos.step == t.total_steps:
            loop.evaluate(step)
            last_eval = step
        if pos.step % spec.checkpoint_every == 0 and pos.step < t.total_steps:
            sink.flush()  # every point up to the checkpoint is stored before it exists
            checkpoints.save(loop.state(pos))
    final = pos.step - 1
    if last_eval != final and final >= 0:
        loop.evaluate(final)
    _finish_swa(t, task, sink, final)
    sink.flush()
    return TrainResult(RunOutcome.SUCCEEDED, None, final if final >= 0 else None)


def _finish_swa(t: Training, task: Task, sink: Sink, step: int) -> None:
    if t.swa is None:
        return
    averaged: nn.Module | None = t.swa.finalize(task)
    if averaged is not None:
        sink.add("swa_val_loss", step, task.evaluate(averaged)["val_loss"])
