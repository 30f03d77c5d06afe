"""Gradient norms of a torch model, named as lrlab's analyzer reads them.

    loss.backward()
    run.log({"train_loss": loss.item(), **lrlab.torch.grad_norms(model)}, step=step)

`grad_norm` is the global L2 norm of every trainable parameter's gradient (log it before
clipping); `grad_norm/<index>.<module>` is the norm of one layer: a module owning trainable
parameters directly (a Linear's weight and bias together), `index` its position from 0
in `model.named_parameters()` order (input -> output for sequential models), zero-padded
to one width of at least two digits, `module` its qualified name (`root` for parameters of
the model itself). The analyzer compares the first layer with the last to tell vanishing
and exploding gradients apart from a small or large global norm; lrlab's own runner
records the same names.

Importing `lrlab` never imports torch; this module does, so torch must be installed.
"""

from __future__ import annotations

try:
    import torch
except ImportError as exc:  # torch is optional for the SDK: only this module needs it
    raise ImportError(
        "lrlab.torch needs PyTorch, which is not installed: pip install torch"
    ) from exc

__all__ = ["grad_norms", "layer_names"]

ROOT = "root"


def _layers(model: torch.nn.Module) -> tuple[list[str], list[list[torch.nn.Parameter]]]:
    modules: list[str] = []
    params: list[list[torch.nn.Parameter]] = []
    for qualified, p in model.named_parameters():
        if not p.requires_grad:
            continue
        module = qualified.rpartition(".")[0] or ROOT
        if not modules or modules[-1] != module:
            modules.append(module)
            params.append([])
        params[-1].append(p)
    width = max(2, len(str(len(modules) - 1)))
    return [f"grad_norm/{i:0{width}d}.{m}" for i, m in enumerate(modules)], params


def layer_names(model: torch.nn.Module) -> list[str]:
    """The per-layer metric names of `model`, input -> output."""
    return _layers(model)[0]


def grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """After `backward()`: `grad_norm` and one `grad_norm/<index>.<module>` per layer, as
    floats (one device sync for all of them). A parameter without a gradient counts as 0."""
    names, groups = _layers(model)
    squares = []
    for group in groups:
        grads = [p.grad.detach() for p in group if p.grad is not None]
        if grads:
            norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads])
            squares.append(torch.sum(norms.to(grads[0].device) ** 2))
        else:
            squares.append(torch.zeros((), dtype=torch.float64))
    if not squares:
        return {"grad_norm": 0.0}
    device = squares[0].device
    per_layer = torch.stack([s.to(device) for s in squares])
    values: list[float] = torch.cat([per_layer.sum().reshape(1), per_layer]).sqrt().tolist()
    return {"grad_norm": values[0], **dict(zip(names, values[1:], strict=True))}
