"""Model families for the corpus, each built from a small dict of settings.

The families differ in what goes wrong with them: deep tanh/sigmoid stacks with small
init (dense, convolutional or recurrent) lose their gradient on the way back, recurrent
nets with large recurrent weights blow theirs up, a bottleneck or a linear model cannot
fit a nonlinear target.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.families.data import Task

__all__ = ["build"]

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def _init(model: nn.Module, scale: float | None) -> None:
    """Weights ~ N(0, scale^2 / fan_in) when `scale` is set (small: vanishing, large:
    exploding); torch's defaults otherwise."""
    if scale is None:
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, std=scale / fan_in**0.5)
            nn.init.zeros_(m.bias)


class MLP(nn.Module):
    def __init__(self, task: Task, hidden: list[int], act: str, init: float | None, dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(torch.tensor(task.x[0].shape[1:]).prod())
        for h in hidden:
            layers += [nn.Linear(width, h), _ACT[act]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, task.out_features))
        self.net = nn.Sequential(*layers)
        _init(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResidualMLP(nn.Module):
    """Pre-norm residual blocks (LayerNorm, Linear, ReLU, Linear) around a projection;
    `norm=False` leaves the norms out, `init` scales the block weights (large: the sum of
    the branches grows with depth)."""

    def __init__(self, task: Task, width: int, blocks: int, norm: bool, init: float | None):
        super().__init__()
        self.inp = nn.Sequential(
            nn.Flatten(), nn.Linear(int(torch.tensor(task.x[0].shape[1:]).prod()), width)
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(width) if norm else nn.Identity(),
                nn.Linear(width, width),
                nn.ReLU(),
                nn.Linear(width, width),
            )
            for _ in range(blocks)
        )
        self.out = nn.Linear(width, task.out_features)
        if init is not None:
            for block in self.blocks:
                _init(block, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class Conv1D(nn.Module):
    """Temporal convolutions over a sequence, then the mean over time; `depth` more
    convolutions make a deep plain stack (no residuals, no norms)."""

    def __init__(self, task: Task, channels: int, depth: int, act: str, init: float | None):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(task.in_features, channels, 5, padding=2), _ACT[act]()]
        for _ in range(1 + depth):
            layers += [nn.Conv1d(channels, channels, 5, padding=2), _ACT[act]()]
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(channels, task.out_features)
        _init(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x.transpose(1, 2)).mean(2))


class CNN(nn.Module):
    """Two convolutions around a pooling; `depth` more convolutions before the pooling
    make a deep plain stack (no residuals, no norms)."""

    def __init__(self, task: Task, channels: int, depth: int, act: str, init: float | None):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), _ACT[act]()]
        for _ in range(depth):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), _ACT[act]()]
        self.net = nn.Sequential(
            *layers,
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            _ACT[act](),
            nn.Flatten(),
            nn.Linear(2 * channels * 16, task.out_features),
        )
        _init(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _recurrent(cell: str, inputs: int, hidden: int, act: str) -> nn.Module:
    if cell == "rnn":
        return nn.RNN(inputs, hidden, batch_first=True, nonlinearity=act)
    return {"gru": nn.GRU, "lstm": nn.LSTM}[cell](inputs, hidden, batch_first=True)


class Recurrent(nn.Module):
    """A recurrent layer (`layers` stacked, each a module of its own so that the input-side
    layer's gradient is seen apart) and a head on the last step. `init` scales every
    recurrent weight to N(0, init^2 / fan_in) (small: the gradient fades down the stack)."""

    def __init__(
        self,
        task: Task,
        cell: str,
        hidden: int,
        recurrent_init: float | None,
        act: str,
        layers: int,
        init: float | None,
    ):
        super().__init__()
        self.rnn = _recurrent(cell, task.in_features, hidden, act)
        # Registered before the head, which stays the output side.
        self.stack = nn.ModuleList(_recurrent(cell, hidden, hidden, act) for _ in range(layers - 1))
        self.head = nn.Linear(hidden, task.out_features)
        named = [np for layer in (self.rnn, *self.stack) for np in layer.named_parameters()]
        if init is not None:
            for name, p in named:
                with torch.no_grad():
                    if "weight" in name:
                        p.normal_(std=init / p.shape[1] ** 0.5)
                    else:
                        p.zero_()
        if recurrent_init is not None:
            # A recurrent matrix with spectral radius ~recurrent_init: above 1 the gradient
            # through time grows geometrically.
            for name, p in named:
                if "weight_hh" in name:
                    q, _ = torch.linalg.qr(torch.randn(p.shape[1], p.shape[1]))
                    blocks = p.shape[0] // p.shape[1]
                    with torch.no_grad():
                        p.copy_(recurrent_init * q.repeat(blocks, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        for layer in self.stack:
            out, _ = layer(out)
        return self.head(out[:, -1])


class Transformer(nn.Module):
    def __init__(self, task: Task, width: int, layers: int):
        super().__init__()
        self.embed = nn.Linear(task.in_features, width)
        self.pos = nn.Parameter(torch.randn(1, int(task.x[0].shape[1]), width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, task.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x) + self.pos).mean(1))


def _conv_settings(model: dict[str, Any], channels: int) -> tuple[int, int, str, float | None]:
    """A convolutional family's channels, extra depth, activation and init."""
    return (
        model.get("channels", channels),
        model.get("depth", 0),
        model.get("act", "relu"),
        model.get("init"),
    )


def build(task: Task, model: dict[str, Any]) -> nn.Module:
    arch = model["arch"]
    if arch == "mlp":
        return MLP(
            task,
            list(model["hidden"]),
            model.get("act", "relu"),
            model.get("init"),
            model.get("dropout", 0.0),
        )
    if arch == "linear":
        return MLP(task, [], "relu", None, 0.0)
    if arch == "cnn":
        return CNN(task, *_conv_settings(model, 8))
    if arch in ("rnn", "gru", "lstm"):
        return Recurrent(
            task,
            arch,
            model.get("hidden", 32),
            model.get("recurrent_init"),
            model.get("act", "tanh"),
            model.get("layers", 1),
            model.get("init"),
        )
    if arch == "residual":
        return ResidualMLP(
            task,
            model.get("width", 64),
            model.get("blocks", 4),
            model.get("norm", True),
            model.get("init"),
        )
    if arch == "conv1d":
        return Conv1D(task, *_conv_settings(model, 16))
    if arch == "transformer":
        return Transformer(task, model.get("width", 32), model.get("layers", 2))
    raise ValueError(f"unknown arch {arch!r}")
