"""Regression: a smooth nonlinear target of Gaussian features, generated from the seed.

y = sin(2 x.w1) + 0.5 (x.w2)^2 + noise * e, with x, e ~ N(0, 1) and w1, w2 ~ N(0, 1/d),
so x.w1 and x.w2 are ~N(0, 1) at any n_features and the target's scale does not depend on
it. The last 20% of the samples are held out (they are i.i.d., so no shuffle is needed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from services.specs import RegressionTask as RegressionParams
from services.specs import TaskParams
from workers.tasks.base import DatasetTask, mlp_layers, seeded

__all__ = ["VAL_FRACTION", "build_regression", "make_regression"]

VAL_FRACTION = 0.2


def make_regression(
    n_samples: int, n_features: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # float32 from the start: the largest spec (1M x 1000) would need 8 GB in float64.
    x = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    w = rng.standard_normal((n_features, 2), dtype=np.float32) / np.sqrt(n_features)
    projected = x @ w
    y = np.sin(2 * projected[:, 0]) + 0.5 * projected[:, 1] ** 2
    y += noise * rng.standard_normal(n_samples, dtype=np.float32)
    return x, y.astype(np.float32)


class Regression(DatasetTask):
    def criterion(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs.squeeze(-1), targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        mse = F.mse_loss(outputs.squeeze(-1), targets)
        variance = ((targets - targets.mean()) ** 2).mean()
        return {"val_loss": float(mse), "val_r2": float(1 - mse / variance)}


def build_regression(params: TaskParams, seed: int, dropout: float) -> Regression:
    if not isinstance(params, RegressionParams):
        raise TypeError(f"regression needs RegressionTask params, got {type(params).__name__}")
    x, y = make_regression(params.n_samples, params.n_features, params.noise, seed)
    n_train = params.n_samples - round(params.n_samples * VAL_FRACTION)
    with seeded(seed):
        sizes = [params.n_features, *params.hidden, 1]
        model = nn.Sequential(*mlp_layers(sizes, dropout, params.activation, params.init_scale))
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    return Regression(model, (x_t[:n_train], y_t[:n_train]), (x_t[n_train:], y_t[n_train:]))
