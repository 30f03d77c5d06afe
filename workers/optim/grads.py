"""The trial's gradients in one flat tensor: one kernel zeroes them, one takes their norm.

grad_norm is recorded every step, so its cost is paid every step. Once every parameter's
`.grad` is a view into one contiguous tensor, autograd accumulates into those views in
place (it adds into a `.grad` that exists instead of replacing it), clipping and the
optimizers update them in place, zeroing is `flat.zero_()` and the global L2 norm is one
`vector_norm(flat)`, where per-tensor norms cost a Python list and three kernels.

A parameter that gets no gradient in a step would keep a zero `.grad` here instead of None,
and optimizers step a zero gradient (momentum, weight decay) where they skip a None one. So
the flat buffer is adopted after the first backward pass only if every parameter got a
dense gradient there, all of one dtype and device (every built-in task); otherwise the
gradients stay per tensor, zeroed to None as `zero_grad(set_to_none=True)` does. A task
whose loss uses some parameters only in some steps should not be trained on the flat path;
none of the built-in ones does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["GradBuffer"]


class GradBuffer:
    """Zeroes the parameters' gradients and measures their global L2 norm.

    Call `zero()` before each backward pass and `norm()` after it (before clipping)."""

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        self.flat: torch.Tensor | None = None
        self._decided = False  # whether the first backward pass has been looked at

    def zero(self) -> None:
        if self.flat is not None:
            self.flat.zero_()
        else:
            for p in self.params:
                p.grad = None

    def norm(self) -> torch.Tensor:
        """The global L2 norm of the current gradients (0 if there are none)."""
        if not self._decided:
            self._decided = True
            self.flat = _adopt(self.params)
        if self.flat is not None:
            norm: torch.Tensor = torch.linalg.vector_norm(self.flat)
            return norm
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.zeros(())
        # What torch.nn.utils.get_total_norm computes, without its per-call bookkeeping.
        total: torch.Tensor = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        return total


def _adopt(params: list[torch.Tensor]) -> torch.Tensor | None:
    """Move the gradients of the first backward pass into one flat tensor and make each
    `.grad` a view of it; None (and nothing changed) if they do not all fit one."""
    grads = [p.grad for p in params]
    if not grads or any(g is None or g.layout != torch.strided for g in grads):
        return None
    dense = [g for g in grads if g is not None]  # all of them; the filter is for mypy
    if len({(g.dtype, g.device) for g in dense}) != 1:
        return None
    flat = torch.cat([g.reshape(-1) for g in dense])
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p)
        offset += n
    return flat
