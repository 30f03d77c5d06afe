"""An autograd op that the sharpness probe must refuse: its backward cannot itself be
differentiated, so no Hessian-vector product goes through it."""

from __future__ import annotations

import torch


class OnceOnlyTanh(torch.autograd.Function):
    """tanh with a backward that cannot itself be differentiated (as some fused ops)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * (1 - y * y)
