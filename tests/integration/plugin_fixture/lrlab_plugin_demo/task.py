"""The demo task's builder (workers only: it imports torch)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from services.specs.tasks import TaskParams
from workers.tasks.base import DatasetTask, mlp_layers, seeded

from .specs import QuadraticTask


class Quadratic(DatasetTask):
    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs.squeeze(-1), targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"val_loss": float(self.criterion(outputs, targets))}


def build_quadratic(params: TaskParams, seed: int, dropout: float) -> Quadratic:
    if not isinstance(params, QuadraticTask):
        raise TypeError(f"quadratic needs QuadraticTask params, got {type(params).__name__}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(params.n_samples, 1, generator=generator) * 2 - 1
    noise = torch.randn(params.n_samples, generator=generator)
    y = params.coefficient * x.squeeze(-1) ** 2 + params.noise * noise
    n_train = params.n_samples - params.n_samples // 5
    with seeded(seed):
        model = nn.Sequential(*mlp_layers([1, params.hidden, params.hidden, 1], dropout))
    return Quadratic(model, (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]))
