"""Sharpness: the top eigenvalue of the training objective's Hessian, by power iteration.

The Hessian is never formed. The gradient g is taken once with its graph
(create_graph=True); H v is then the gradient of g . v, one backward pass through that
graph per power-iteration step. The iteration starts from the last estimate's vector (the
top direction moves slowly between estimates, so a few steps settle it) and stops once the
Rayleigh quotient changes by less than TOLERANCE. When the largest-magnitude eigenvalue is
negative, a second pass on H - lambda I finds the top one (the stability limit is about
the most positive curvature).

An estimate leaves the trial as it was: torch.autograd.grad never touches .grad; the
parameters and the optimizer are only read; the forward pass runs under a forked RNG, so
dropout draws the mask the step's own forward pass then draws again; and module buffers
(BatchNorm's running statistics) are put back. The training curve is the same with or
without the probe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

__all__ = ["TOLERANCE", "SharpnessProbe", "SharpnessUnsupported", "top_eigenvalue"]

# Relative change of the estimate between two iterations below which it has settled.
TOLERANCE = 1e-3

Vector = list[torch.Tensor]
Operator = Callable[[Vector], Vector]

# The names autograd gives the node that raises "trying to differentiate twice".
_ERROR_NODES = frozenset({"torch::autograd::Error", "torch::autograd::DelayedError"})


class SharpnessUnsupported(RuntimeError):
    """The model's loss cannot be differentiated twice (some fused or custom ops)."""


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([(x * y).sum() for x, y in zip(a, b, strict=True)]).sum()


def _normalized(v: Vector) -> Vector:
    norm = torch.sqrt(_dot(v, v))
    return [x / norm for x in v]


def _power_iteration(
    apply: Operator, start: Vector, iters: int, tolerance: float
) -> tuple[float, Vector]:
    """The dominant eigenvalue of `apply` (a symmetric operator) and its unit vector."""
    v = _normalized(start)
    value = float("nan")
    for _ in range(iters):
        hv = apply(v)
        new = float(_dot(v, hv))  # the Rayleigh quotient of the unit vector v
        norm = float(torch.sqrt(_dot(hv, hv)))
        settled = abs(new - value) <= tolerance * abs(new)
        value = new
        if norm == 0.0 or settled:
            break
        v = [x / norm for x in hv]
    return value, v


def _raises_when_differentiated(grads: Sequence[torch.Tensor | None]) -> bool:
    """Whether the gradients' graph holds the error node that a backward marked
    once_differentiable leaves there: a Hessian-vector product would either raise on it or,
    when it lies off the path to the parameters, silently miss that part of the Hessian."""
    # next_functions holds None for inputs that need no gradient: the walk skips those.
    stack: list[torch.autograd.graph.Node | None] = [
        g.grad_fn for g in grads if g is not None and g.grad_fn is not None
    ]
    seen: set[torch.autograd.graph.Node] = set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node.name() in _ERROR_NODES:
            return True
        stack.extend(child for child, _ in node.next_functions)
    return False


def _hessian_operator(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> Operator:
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    if _raises_when_differentiated(grads):
        raise RuntimeError("an op in the model has a backward marked once_differentiable")
    # Only gradients that depend on the parameters have a Hessian block; the rest are 0.
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def apply(v: Vector) -> Vector:
        out = [torch.zeros_like(p) for p in params]
        if not live:
            return out
        g_dot_v = _dot([grads[i] for i in live], [v[i] for i in live])
        hv = torch.autograd.grad(
            g_dot_v, [params[i] for i in live], retain_graph=True, allow_unused=True
        )
        for i, h in zip(live, hv, strict=True):
            if h is not None:
                out[i] = h.detach()
        return out

    return apply


def top_eigenvalue(
    loss: torch.Tensor,
    params: Sequence[torch.Tensor],
    start: Vector,
    iters: int,
    tolerance: float = TOLERANCE,
) -> tuple[float, Vector]:
    """The largest eigenvalue of the Hessian of `loss` in `params`, with its unit vector:
    at most `iters` products, fewer once the estimate moves by under `tolerance` (relative).

    Raises SharpnessUnsupported when the loss has no second derivative."""
    try:
        hessian = _hessian_operator(loss, params)
        value, vector = _power_iteration(hessian, start, iters, tolerance)
        if value < 0:
            # The dominant eigenvalue is negative; H - value*I has the top one on top.
            shift = value

            def shifted(v: Vector) -> Vector:
                return [h - shift * x for h, x in zip(hessian(v), v, strict=True)]

            top, vector = _power_iteration(shifted, start, iters, tolerance)
            value = top + shift
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        raise SharpnessUnsupported(
            "diagnostics.sharpness_every: this model's loss cannot be differentiated twice, "
            f"so its sharpness cannot be measured ({exc}); turn sharpness off to train it"
        ) from exc
    return value, vector


@contextlib.contextmanager
def _untouched(model: nn.Module, device: torch.device) -> Iterator[None]:
    """The global RNGs and the model's buffers as they were, whatever runs inside."""
    saved = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    cuda: list[int] = []
    if device.type == "cuda":  # dropout on a GPU draws from that device's generator
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)


class SharpnessProbe:
    """Estimates the sharpness of a trial's objective at its current weights."""

    def __init__(self, model: nn.Module, iters: int, seed: int) -> None:
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.iters = iters
        # The first start vector comes from a generator of its own: the probe never draws
        # from the global RNG that dropout and the trial's other draws use.
        generator = torch.Generator().manual_seed(seed)
        self.vector: Vector = [
            torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
            for p in self.params
        ]

    def estimate(self, objective: Callable[[], torch.Tensor]) -> float:
        """The top Hessian eigenvalue of `objective()` (a fresh forward pass) now."""
        device = self.params[0].device if self.params else torch.device("cpu")
        with _untouched(self.model, device):
            loss = objective()
            value, vector = top_eigenvalue(loss, self.params, self.vector, self.iters)
        if all(bool(torch.isfinite(x).all()) for x in vector):
            self.vector = vector  # the next estimate starts here
        return value
