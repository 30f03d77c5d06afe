"""The flat gradient buffer: the same gradients and norm as per-tensor gradients, kept in
one tensor across steps, and left alone for a model that does not fit it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workers.optim.grads import GradBuffer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def _loss(model: nn.Module, seed: int) -> torch.Tensor:
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))
    return model(x).square().mean()


def test_gradients_and_norm_match_per_tensor_gradients_step_after_step() -> None:
    flat_model, plain_model = _model(), _model()
    buffer = GradBuffer(list(flat_model.parameters()))
    for seed in range(3):
        buffer.zero()
        _loss(flat_model, seed).backward()
        norm = buffer.norm()
        plain_model.zero_grad(set_to_none=True)
        _loss(plain_model, seed).backward()
        grads = [p.grad for p in plain_model.parameters() if p.grad is not None]
        expected = torch.nn.utils.get_total_norm(grads)
        assert norm.item() == pytest.approx(expected.item(), rel=1e-6)
        for p, q in zip(flat_model.parameters(), plain_model.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad)  # type: ignore[arg-type]
        # Autograd accumulated into the views: every .grad still lives in the one buffer.
        assert buffer.flat is not None
        base = buffer.flat.data_ptr()
        end = base + buffer.flat.numel() * buffer.flat.element_size()
        assert all(base <= p.grad.data_ptr() < end for p in flat_model.parameters())  # type: ignore[union-attr]


def test_zero_clears_the_buffer_in_place() -> None:
    model = _model()
    buffer = GradBuffer(list(model.parameters()))
    _loss(model, 0).backward()
    buffer.norm()
    flat = buffer.flat
    buffer.zero()
    assert buffer.flat is flat and flat is not None and not flat.any()


def test_a_parameter_without_a_gradient_keeps_per_tensor_gradients() -> None:
    model = _model()
    unused = nn.Parameter(torch.ones(2))
    params = [*model.parameters(), unused]
    buffer = GradBuffer(params)
    buffer.zero()
    _loss(model, 0).backward()
    norm = buffer.norm()
    assert buffer.flat is None and unused.grad is None
    grads = [p.grad for p in params if p.grad is not None]
    assert norm.item() == pytest.approx(torch.nn.utils.get_total_norm(grads).item(), rel=1e-6)
    buffer.zero()
    assert all(p.grad is None for p in params)  # as zero_grad(set_to_none=True) leaves them
