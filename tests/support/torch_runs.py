"""Real training runs for analyzer tests: a small MLP on a teacher-labelled Gaussian task,
logged as an SDK user logs it (lrlab.torch.grad_norms after backward)."""

from __future__ import annotations

import lrlab.torch as lrlab_torch
import torch
from torch import nn
from torch.nn import functional as F

from workers.optim.layer_norms import LAYER_EVERY

Series = dict[str, tuple[list[int], list[float]]]
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
INPUTS, CLASSES, EXAMPLES = 16, 4, 1024


def mlp(depth: int, width: int, activation: str, init_scale: float) -> nn.Sequential:
    """`depth` hidden layers; every weight matrix scaled by `init_scale` after torch's init."""
    sizes = [INPUTS] + [width] * depth + [CLASSES]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            linear.weight.mul_(init_scale)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def train_mlp(
    *,
    depth: int,
    activation: str,
    lr: float,
    steps: int,
    batch_size: int = 32,
    init_scale: float = 1.0,
    optimizer: str = "sgd",
    width: int = 32,
    seed: int = 0,
) -> Series:
    """train_loss, lr and grad_norm every step; grad_norm/<index>.<module> every
    LAYER_EVERY steps, as lrlab's runner records them."""
    torch.manual_seed(seed)
    model = mlp(depth, width, activation, init_scale)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(EXAMPLES, INPUTS, generator=gen)
    y = (x @ torch.randn(INPUTS, CLASSES, generator=gen)).argmax(dim=1)
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    series: Series = {}

    def log(name: str, step: int, value: float) -> None:
        steps_, values = series.setdefault(name, ([], []))
        steps_.append(step)
        values.append(value)

    for step in range(steps):
        index = torch.randint(0, EXAMPLES, (batch_size,), generator=gen)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[index]), y[index])
        loss.backward()
        log("train_loss", step, loss.item())
        log("lr", step, lr)
        for name, value in lrlab_torch.grad_norms(model).items():
            if name == "grad_norm" or step % LAYER_EVERY == 0:
                log(name, step, value)
        opt.step()
    return series


def without_layers(series: Series) -> Series:
    return {n: s for n, s in series.items() if not n.startswith("grad_norm/")}
