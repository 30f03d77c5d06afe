"""The per-step metrics of the steps since the last drain, kept as the step made them.

A step appends its loss and grad norm as 0-d tensors and its lrs as numbers, and every
few steps its per-layer gradient norms as one 1-d tensor; `drain` turns a block of steps
into floats with one `tolist()` per metric, checks the losses, and hands the block to the
sink as columns (the per-layer norms as one single-step block per sampled step). So the
training step never converts a tensor to a number (`.item()`, a device sync on a GPU) and
never builds a row.

Divergence: a non-finite loss, or one the trial's LossWatch says blew up, is seen when its
block is drained, so the runner drains every `DRAIN_STEPS` steps or `DRAIN_SECONDS`
seconds, whichever comes first (and before every evaluation, checkpoint and stop). It then
keeps the points up to and including that step and drops the rest; the trial ends there
as diverged, having run at most that many steps (or that long) past it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from workers.loss_stop import LossWatch
from workers.sink import BlockSink

# A block of steps ends after this many steps or this long, whichever comes first.
DRAIN_STEPS = 32
DRAIN_SECONDS = 0.25


class StepLog:
    def __init__(
        self,
        lr_names: list[str],
        first_step: int,
        watch: LossWatch | None,
        layer_names: Sequence[str] = (),
    ) -> None:
        self.lr_names = lr_names
        self.watch = watch  # judges each drained loss in step order
        self.layer_names = list(layer_names)  # of the per-layer norms, in tensor order
        self.first = first_step  # the step of the first entry
        self.started = time.perf_counter()  # when this block began

        self.losses: list[torch.Tensor] = []
        self.norms: list[torch.Tensor] = []
        self.lrs: list[list[float]] = [[] for _ in lr_names]  # one list per param group
        self.times: list[float] = []
        self.layer_steps: list[int] = []  # the steps whose per-layer norms were sampled
        self.layer_norms: list[torch.Tensor] = []

    @property
    def step(self) -> int:
        """The step the next `record` is for."""
        return self.first + len(self.times)

    def _clear(self) -> None:
        # In place: the runner holds on to the lr lists.
        self.losses.clear()
        self.norms.clear()
        self.times.clear()
        self.layer_steps.clear()
        self.layer_norms.clear()
        for lrs in self.lrs:
            lrs.clear()

    def record(
        self, loss: torch.Tensor, norm: torch.Tensor, layers: torch.Tensor | None = None
    ) -> None:
        """The step's loss, grad norm and (when sampled) per-layer norms; its lrs go
        straight into `lrs`."""
        if layers is not None:
            self.layer_steps.append(self.step)
            self.layer_norms.append(layers)
        self.losses.append(loss)
        self.norms.append(norm)
        self.times.append(time.time())

    def due(self) -> bool:
        return len(self.times) >= DRAIN_STEPS or time.perf_counter() - self.started >= DRAIN_SECONDS

    def drain(self, sink: BlockSink) -> tuple[int, str] | None:
        """Hand the block to `sink`; returns the step of its first non-finite or blown-up
        loss (its points are kept, later ones dropped) and what happened there, or None."""
        n = len(self.times)
        self.started = time.perf_counter()
        if n == 0:
            return None
        losses: list[float] = torch.stack(self.losses).tolist()
        bad = self._first_bad(losses)
        keep = n if bad is None else bad[0] + 1
        columns = {
            name: [float(v) for v in lrs[:keep]]
            for name, lrs in zip(self.lr_names, self.lrs, strict=True)
        }
        columns["train_loss"] = losses[:keep]
        columns["grad_norm"] = torch.stack(self.norms[:keep]).tolist()
        sink.add_steps(self.first, columns, self.times[:keep])
        self._drain_layers(sink, self.first + keep)
        first = self.first
        self.first += n
        self._clear()
        return None if bad is None else (first + bad[0], bad[1])

    def _first_bad(self, losses: list[float]) -> tuple[int, str] | None:
        for i, value in enumerate(losses):
            if not math.isfinite(value):
                return i, f"train_loss is {value}"
            if self.watch is not None and self.watch.add(value):
                return i, self.watch.evidence()
        return None

    def _drain_layers(self, sink: BlockSink, end: int) -> None:
        """The per-layer samples of steps before `end`, one block per sampled step."""
        kept = [i for i, step in enumerate(self.layer_steps) if step < end]
        if not kept:
            return
        rows: list[list[float]] = torch.stack([self.layer_norms[i] for i in kept]).tolist()
        for i, values in zip(kept, rows, strict=True):
            step = self.layer_steps[i]
            columns = {name: [v] for name, v in zip(self.layer_names, values, strict=True)}
            sink.add_steps(step, columns, [self.times[step - self.first]])
