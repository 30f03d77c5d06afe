"""Per-layer gradient norms: one L2 norm per parameter-owning module, every few steps.

A layer is a module that owns trainable parameters directly (a Linear's weight and bias
make one layer). Its metric is `grad_norm/<index>.<module>`: `module` is the module's
qualified name in the model (`root` for parameters of the model itself) and `index` its
position, from 0, among the layers in `model.named_parameters()` order, zero-padded to one
width (at least two digits). Registration order is input -> output for sequential models,
so the analyzer learns which layer is first and which is last from the index alone, and
the names sort in layer order. The SDK's `lrlab.torch.grad_norms` names them the same way.

The runner measures them every `LAYER_EVERY` steps, before clipping, as one 0-d-tensor
stack that leaves the step with the block it belongs to (workers.step_log): no host sync
in the step. A module's own parameters are consecutive in `named_parameters()` order, so
on the flat gradient buffer (workers.optim.grads) each layer is one slice and one norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from workers.optim.grads import GradBuffer

__all__ = ["LAYER_EVERY", "LayerNorms", "layer_metric_names"]

# Steps between two per-layer samples: the analyzer bins these series, so one point in 8
# steps is plenty, and the cost (one norm per layer) stays off most steps.
LAYER_EVERY = 8
ROOT = "root"


def layer_metric_names(modules: Sequence[str]) -> list[str]:
    """`grad_norm/<index>.<module>` for layers given in input -> output order."""
    width = max(2, len(str(len(modules) - 1)))
    return [f"grad_norm/{i:0{width}d}.{m}" for i, m in enumerate(modules)]


class LayerNorms:
    """Which trainable parameters make each layer, and their norms from a GradBuffer."""

    def __init__(self, model: nn.Module) -> None:
        modules: list[str] = []
        self.owner: list[int] = []  # per trainable parameter (the runner's order): its layer
        for qualified, p in model.named_parameters():
            if not p.requires_grad:
                continue
            module = qualified.rpartition(".")[0] or ROOT
            if not modules or modules[-1] != module:
                modules.append(module)
            self.owner.append(len(modules) - 1)
        self.names = layer_metric_names(modules)
        self._spans: list[tuple[int, int]] | None = None  # layer slices of the flat buffer

    def measure(self, grads: GradBuffer) -> torch.Tensor:
        """One L2 norm per layer of the current gradients (call after `grads.norm()`)."""
        if grads.flat is not None:
            if self._spans is None:
                self._spans = self._flat_spans(grads.params)
            flat = grads.flat
            return torch.stack(torch._foreach_norm([flat[a:b] for a, b in self._spans]))
        # Gradients per tensor (and some may be None): norms per parameter, summed per layer.
        present = [i for i, p in enumerate(grads.params) if p.grad is not None]
        squares = torch.zeros(len(self.names), dtype=torch.float32)
        if present:
            norms = torch._foreach_norm([grads.params[i].grad for i in present])  # type: ignore[misc]
            owner = torch.tensor([self.owner[i] for i in present])
            squares = squares.to(norms[0].device)
            squares.index_add_(0, owner.to(squares.device), torch.stack(norms).float() ** 2)
        return squares.sqrt()

    def _flat_spans(self, params: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        offset = 0
        for layer, p in zip(self.owner, params, strict=True):
            if layer == len(spans):
                spans.append((offset, offset))
            spans[layer] = (spans[layer][0], offset + p.numel())
            offset += p.numel()
        return spans
