"""Digits: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

The split is stratified and drawn from the trial's seed; pixels are standardized with the
training split's statistics only, so nothing about the held-out split leaks into training.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from services.specs import DigitsTask as DigitsParams
from services.specs import TaskParams
from workers.tasks.base import DatasetTask, linear_groups, mlp_layers, seeded

__all__ = ["DigitsCNN", "build_digits"]

N_PIXELS = 64
N_CLASSES = 10


class DigitsCNN(nn.Module):
    """Two small conv blocks on the 1x8x8 image, then a dense head through `hidden`.

    The first block has BatchNorm, so SWA runs exercise `update_bn`; conv BatchNorm still
    has 64 values per channel at batch size 1, so every batch size trains."""

    def __init__(
        self, hidden: list[int], dropout: float, activation: str = "relu", init_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.block2 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.dropout = nn.Dropout(dropout)
        sizes = [32 * 2 * 2, *hidden, N_CLASSES]
        self.head = nn.Sequential(*mlp_layers(sizes, dropout, activation, init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 8, 8)
        x = self.block2(self.block1(x))
        logits: torch.Tensor = self.head(self.dropout(x.flatten(1)))
        return logits


class Digits(DatasetTask):
    def layer_groups(self) -> list[list[nn.Parameter]]:
        model = self.model
        if isinstance(model, DigitsCNN):
            convs = [list(model.block1.parameters()), list(model.block2.parameters())]
            return convs + linear_groups(model.head)
        return linear_groups(model)


@functools.cache
def _bundled() -> tuple[np.ndarray, np.ndarray]:
    """The images and labels, parsed once per process (~50 ms of gzip + CSV each time
    otherwise): a Ray worker runs trial after trial. Read-only, as every trial shares them.
    scikit-learn is imported here, not at module level: it takes longer to import than
    torch (scipy, pandas), and every worker imports the task registry, digits or not."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = data.data, data.target
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _split(seed: int, val_fraction: float) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    x, y = _bundled()
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=val_fraction, random_state=seed, stratify=y
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0  # corner pixels are always 0 in the training split
    return (x_train - mean) / std, (x_val - mean) / std, y_train, y_val


def build_digits(params: TaskParams, seed: int, dropout: float) -> Digits:
    if not isinstance(params, DigitsParams):
        raise TypeError(f"digits needs DigitsTask params, got {type(params).__name__}")
    x_train, x_val, y_train, y_val = _split(seed, params.val_fraction)
    if params.train_subset is not None:
        # The split is shuffled and stratified, so its first N rows cover every class.
        x_train, y_train = x_train[: params.train_subset], y_train[: params.train_subset]
    act, scale = params.activation, params.init_scale
    with seeded(seed):
        model: nn.Module
        if params.model == "cnn":
            model = DigitsCNN(params.hidden, dropout, act, scale)
        else:
            sizes = [N_PIXELS, *params.hidden, N_CLASSES]
            model = nn.Sequential(*mlp_layers(sizes, dropout, act, scale))

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)

    return Digits(model, tensors(x_train, y_train), tensors(x_val, y_val))
