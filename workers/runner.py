"""The training loop of one trial: build, (resume,) train, evaluate, checkpoint, report.

Metric names follow the contract in the README (How a trial runs): every step train_loss,
lr (lr/<g> for other param groups) and grad_norm (global L2 norm before clipping); every
LAYER_EVERY steps grad_norm/<index>.<module> per layer (workers.optim.layer_norms); every
evaluation the task's val_* metrics and samples_per_sec; swa_val_loss at the end of an SWA run; with
diagnostics.sharpness_every, `sharpness` (see workers.sharpness) every that many steps, on
the step's batch at the weights before its update. A non-finite training loss, or one whose
smoothed value blew up (TrialSpec.stop, see workers.loss_stop), is recorded and ends the
trial as diverged within a few dozen steps (see workers.step_log: per-step values reach
the sink in blocks).

Checkpoints carry the sink's unsent points, which a resumed run sends again (writes are
idempotent): every point below a checkpoint is stored or in it, without the training loop
waiting for the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec
from workers.checkpoints import CheckpointStore
from workers.loss_stop import LossWatch
from workers.optim import Training, build_training, l1_penalty, l2_penalty
from workers.optim.grads import GradBuffer
from workers.optim.layer_norms import LAYER_EVERY, LayerNorms
from workers.sharpness import SharpnessProbe, SharpnessUnsupported
from workers.sink import BlockSink, PointSink, block_sink
from workers.step_log import StepLog
from workers.tasks import Task, build_task


class Control(Protocol):
    stop_reason: str | None
    last_step: int | None


# Called after each evaluation with its step and metrics (early stopping asks its pruner
# here and sets the control's stop_reason); the only per-evaluation hook.
EvalHook = Callable[[int, Mapping[str, float]], None]


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

    def __init__(self, spec: TrialSpec, task: Task, t: Training, sink: BlockSink) -> None:
        self.spec, self.task, self.t, self.sink = spec, task, t, sink
        self.params = [p for p in task.model.parameters() if p.requires_grad]
        self.grads = GradBuffer(self.params)
        self.watch = LossWatch.for_trial(spec, task.surrogate_loss)
        self.layers = LayerNorms(task.model)
        lr_names = _lr_names(len(t.optimizer.param_groups))
        self.log = StepLog(lr_names, 0, self.watch, layer_names=self.layers.names)
        self.lbfgs = isinstance(t.optimizer, torch.optim.LBFGS)
        self.clip_norm = spec.regularization.grad_clip_norm
        self.clip_value = spec.regularization.grad_clip_value
        self.examples = 0
        self.window_start = time.perf_counter()
        diagnostics = spec.diagnostics
        self.sharpness_every = diagnostics.sharpness_every or 0  # 0: never
        self.sharpness = (
            SharpnessProbe(task.model, diagnostics.sharpness_iters, spec.seed)
            if self.sharpness_every
            else None
        )

    def _objective(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        loss = self.task.loss(batch)
        total = loss
        if self.t.l1:
            total = total + l1_penalty(self.task.model, self.t.l1)
        if self.t.l2_in_loss:
            total = total + l2_penalty(self.task.model, self.t.l2_in_loss)
        return loss, total

    def _clip(self, sample: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Clip as the spec says; returns the norms before it: global, and per layer
        when `sample`."""
        norm = self.grads.norm()
        layers = self.layers.measure(self.grads) if sample else None
        if self.clip_norm is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip_norm, norm)
        elif self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.params, self.clip_value)
        return norm, layers

    def step(self, batch: Any) -> None:
        """One optimizer step; its metrics go into `self.log`."""
        opt = self.t.optimizer
        for lrs, group in zip(self.log.lrs, opt.param_groups, strict=True):
            lrs.append(group["lr"])  # the lr this step uses
        sample = bool(self.layers.names) and self.log.step % LAYER_EVERY == 0
        if self.lbfgs:
            seen: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}

            def closure() -> torch.Tensor:
                self.grads.zero()
                loss, total = self._objective(batch)
                total.backward()
                # The first evaluation's loss and norms: those before this step's update.
                norm, layers = self._clip(sample and not seen)
                seen.setdefault("first", (loss.detach(), norm, layers))
                return total

            opt.step(closure)  # type: ignore[arg-type]  # LBFGS takes a tensor closure
            loss_t, norm_t, layers_t = seen["first"]
        else:
            self.grads.zero()
            loss_t, total = self._objective(batch)
            total.backward()
            norm_t, layers_t = self._clip(sample)
            opt.step()
        self.log.record(loss_t.detach(), norm_t, layers_t)
        self.examples += self.task.batch_examples(batch)
        self.t.schedule.after_step()
        if self.t.swa is not None:
            self.t.swa.after_step(self.t.schedule.steps)

    def sharpness_due(self, step: int) -> SharpnessProbe | None:
        """The probe when the sharpness is to be measured at `step`, else None."""
        due = self.sharpness_every and step % self.sharpness_every == 0
        return self.sharpness if due else None

    def measure_sharpness(self, probe: SharpnessProbe, step: int, batch: Any) -> None:
        """Log the sharpness at `step`, before the step's own update on `batch`."""
        started = time.perf_counter()
        value = probe.estimate(lambda: self._objective(batch)[1])
        self.sink.add("sharpness", step, value)
        self.window_start += time.perf_counter() - started  # not training time either

    def evaluate(self, step: int) -> dict[str, float]:
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
        return metrics

    def state(self, pos: _Position) -> dict[str, Any]:
        return {
            "position": dataclasses.asdict(pos),
            "unsent": self.sink.unsent(),  # points below this step not stored yet
            "model": self.task.model.state_dict(),
            "optimizer": self.t.optimizer.state_dict(),
            "schedule": self.t.schedule.state_dict(),
            "swa": None if self.t.swa is None else self.t.swa.state_dict(),
            "loss_watch": None if self.watch is None else self.watch.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> _Position:
        # Order matters: the schedule was built over the optimizer (see LrSchedule).
        self.task.model.load_state_dict(state["model"])
        self.t.optimizer.load_state_dict(state["optimizer"])
        self.t.schedule.load_state_dict(state["schedule"])
        if self.t.swa is not None and state["swa"] is not None:
            self.t.swa.load_state_dict(state["swa"])
        if self.watch is not None and state.get("loss_watch") is not None:
            self.watch.load_state_dict(state["loss_watch"])
        for block in state.get("unsent", []):  # the last attempt may not have stored them
            self.sink.add_steps(*block)
        pos = _Position(**state["position"])
        self.log.first = pos.step
        return pos


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
    sink: PointSink,
    checkpoints: CheckpointStore,
    control: Control,
    device: torch.device | None = None,
    on_eval: EvalHook | None = None,
) -> TrainResult:
    try:
        result = _train(spec, block_sink(sink), checkpoints, control, device, on_eval)
    except BaseException:
        with contextlib.suppress(Exception):  # the training error is the one to report
            checkpoints.close()
        raise
    checkpoints.close()  # the last checkpoint is on disk before the attempt reports
    return result


def _train(
    spec: TrialSpec,
    sink: BlockSink,
    checkpoints: CheckpointStore,
    control: Control,
    device: torch.device | None,
    on_eval: EvalHook | None = None,
) -> TrainResult:
    _seed_everything(spec.seed)
    task = build_task(spec)
    task.to(device or torch.device("cpu"))
    t = build_training(spec, task)
    loop = _Loop(spec, task, t, sink)
    generator = torch.Generator().manual_seed(spec.seed)

    saved = checkpoints.load()  # restores the global RNGs too
    pos = loop.restore(saved) if saved is not None else _Position()
    start = pos.step
    last_eval = pos.step - 1 if saved is not None else -1
    task.model.train()
    batches = _batches(task, t, generator, pos)
    ramp_stop = LossWatch.for_range_test(spec)
    while pos.step < t.total_steps:
        if control.stop_reason is not None:
            diverged = loop.log.drain(sink)
            sink.flush()
            if diverged is not None:
                return _diverged(diverged)
            return TrainResult(RunOutcome.CANCELLED, control.stop_reason, pos.step - 1)
        step = pos.step
        batch = next(batches)
        probe = loop.sharpness_due(step)
        if probe is not None and (stopped := _probe(loop, probe, sink, step, batch)):
            return stopped
        loop.step(batch)
        pos.step += 1
        control.last_step = step
        if ramp_stop is not None and (
            blown := ramp_stop.check(loop.log.losses[-1], loop.log.lrs[0][-1], step)
        ):
            loop.log.drain(sink)  # a non-finite loss is the last point kept
            sink.flush()
            return TrainResult(RunOutcome.SUCCEEDED, blown, step)
        evaluating = pos.step % spec.eval_every == 0 or pos.step == t.total_steps
        saving = pos.step % spec.checkpoint_every == 0 and pos.step < t.total_steps
        # The attempt's first step goes out at once (the curve appears), later ones in blocks.
        if evaluating or saving or pos.step == start + 1 or loop.log.due():
            diverged = loop.log.drain(sink)
            if diverged is not None:
                sink.flush()
                return _diverged(diverged)
        if evaluating:
            metrics = loop.evaluate(step)
            last_eval = step
            # At the last evaluation the budget is spent: there is nothing left to stop.
            if on_eval is not None and pos.step < t.total_steps:
                on_eval(step, metrics)
        if saving:
            checkpoints.save(loop.state(pos))
    final = pos.step - 1
    if last_eval != final and final >= 0:
        loop.evaluate(final)
    _finish_swa(t, task, sink, final)
    sink.flush()
    return TrainResult(RunOutcome.SUCCEEDED, None, final if final >= 0 else None)


def _probe(
    loop: _Loop, probe: SharpnessProbe, sink: BlockSink, step: int, batch: Any
) -> TrainResult | None:
    """Measure the sharpness at `step`; a TrainResult when the trial ends here instead."""
    # Drained first: a trial that diverged already ends there, with no sharpness after it.
    diverged = loop.log.drain(sink)
    if diverged is not None:
        sink.flush()
        return _diverged(diverged)
    try:
        loop.measure_sharpness(probe, step, batch)
    except SharpnessUnsupported as exc:
        sink.flush()
        return TrainResult(RunOutcome.FAILED, str(exc), step - 1 if step > 0 else None)
    return None


def _diverged(where: tuple[int, str]) -> TrainResult:
    step, what = where
    return TrainResult(RunOutcome.DIVERGED, f"diverged: {what} at step {step}", step)


def _finish_swa(t: Training, task: Task, sink: PointSink, step: int) -> None:
    if t.swa is None:
        return
    averaged: nn.Module | None = t.swa.finalize(task)
    if averaged is not None:
        sink.add("swa_val_loss", step, task.evaluate(averaged)["val_loss"])
