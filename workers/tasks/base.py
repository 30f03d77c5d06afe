"""What every task gives the trial runner: a model, batches, a loss and held-out metrics.

A task owns its data (generated or bundled, never downloaded) and its model. The runner
owns everything about optimization: it calls `loss(batch)`, adds any penalties, steps the
optimizer, and calls `evaluate()` every `eval_every` steps.

Determinism: building a task from the same (params, seed, dropout) gives the same data and
the same initial weights, and never touches torch's global RNG (see `seeded`). Batch order
comes only from the generator handed to `epoch_batches`; dropout draws from torch's global
RNG, which the runner seeds.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# Held-out rows per forward pass in `DatasetTask.evaluate`.
EVAL_CHUNK = 4096
# Training rows gathered at once (in shuffled order) by `DatasetTask.epoch_batches`.
GATHER_ROWS = 1 << 16

__all__ = [
    "ACTIVATIONS",
    "DatasetTask",
    "Task",
    "classification_metrics",
    "linear_groups",
    "mlp_layers",
    "seeded",
]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (model init) under `seed` and give the global RNG its state back after,
    so that building a task does not shift the dropout masks of whatever runs next."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# Hidden-layer activations a task's params may name (services.specs.tasks.Activation).
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def mlp_layers(
    sizes: list[int], dropout: float, activation: str = "relu", init_scale: float = 1.0
) -> list[nn.Module]:
    """Linear layers through `sizes` with `activation` and dropout after each hidden one.

    `init_scale` multiplies every weight matrix after torch's default init: below 1 the
    signal shrinks layer by layer (a saddle near zero, vanishing gradients in a deep
    sigmoid/tanh stack), above 1 it grows (exploding gradients in a deep stack)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(fan_in, fan_out)
        if init_scale != 1.0:  # left untouched at 1.0: the same weights as before the option
            with torch.no_grad():
                linear.weight.mul_(init_scale)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return layers


def linear_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """One group per Linear layer, in registration (input -> output) order."""
    return [list(m.parameters()) for m in model.modules() if isinstance(m, nn.Linear)]


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    return {
        "val_loss": float(F.cross_entropy(logits, targets)),
        "val_accuracy": float((logits.argmax(dim=1) == targets).float().mean()),
    }


class Task(abc.ABC):
    """A model plus the data it trains on; built by a `TASK_BUILDERS` entry."""

    model: nn.Module
    # Examples in the training split (cartpole: episodes per update).
    train_size: int
    # True when every batch is the whole training split whatever batch_size says (cartpole:
    # an update is always `episodes_per_update` episodes), so batch_size acts as "full".
    fixed_batches: bool = False
    # True when the training loss is a surrogate whose level says nothing about progress
    # (cartpole's policy gradient: near zero, either sign), so no loss blow-up is judged.
    surrogate_loss: bool = False

    @abc.abstractmethod
    def epoch_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
        """One epoch of training batches, in an order drawn from `generator`.

        All draws happen when iteration starts, so restoring the generator's state from the
        start of an epoch and skipping k batches replays that epoch from batch k."""

    @abc.abstractmethod
    def batches_per_epoch(self, batch_size: int) -> int: ...

    @abc.abstractmethod
    def loss(self, batch: Any) -> torch.Tensor:
        """Forward pass and the training loss of `batch`, with no regularization terms."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """Metrics on the held-out split, of `model` (default: the task's own; pass the SWA
        average here). Runs in eval mode and restores the model's mode after."""

    @abc.abstractmethod
    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The model's parameters in layers, input -> output; each parameter exactly once."""

    @abc.abstractmethod
    def batch_examples(self, batch: Any) -> int:
        """How many examples `batch` holds (for samples_per_sec)."""

    def to(self, device: torch.device) -> None:
        self.model.to(device)


class DatasetTask(Task):
    """A supervised task over tensors: (inputs, targets) batches drawn without replacement.

    Batches are (inputs, targets) tuples with `model(inputs)` the forward pass, which is
    what `torch.optim.swa_utils.update_bn` expects. The last batch of an epoch may be short.
    """

    def __init__(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        self.model = model
        self.train_x, self.train_y = train
        self.val_x, self.val_y = val
        self.train_size = len(self.train_x)

    def epoch_batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(self.train_size, generator=generator).to(self.train_x.device)
        # Rows gathered a chunk of batches at a time, each batch then a view of the chunk:
        # two gathers per chunk instead of two per step (~12 us of a ~1 ms digits step).
        # The same rows in the same order; a chunk bounds the copy on a large split.
        chunk = max(1, GATHER_ROWS // batch_size) * batch_size
        for start in range(0, self.train_size, chunk):
            index = order[start : start + chunk]
            inputs, targets = self.train_x[index], self.train_y[index]
            yield from zip(inputs.split(batch_size), targets.split(batch_size), strict=True)

    def batches_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.train_size / batch_size)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        return self.criterion(self.model(inputs), targets)

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        model = self.model if model is None else model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                # In chunks: the largest specs hold 200k held-out rows, whose hidden
                # activations at once would take gigabytes; the outputs are small.
                chunks = torch.split(self.val_x, EVAL_CHUNK)
                outputs = torch.cat([model(chunk) for chunk in chunks])
                return self.metrics(outputs, self.val_y)
        finally:
            model.train(was_training)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return linear_groups(self.model)

    def batch_examples(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return len(batch[0])

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        self.train_x, self.train_y = self.train_x.to(device), self.train_y.to(device)
        self.val_x, self.val_y = self.val_x.to(device), self.val_y.to(device)

    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return classification_metrics(outputs, targets)
