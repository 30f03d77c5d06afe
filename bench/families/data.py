"""Datasets for the family corpus: shipped with scikit-learn or generated, never downloaded.

Each task gives train / val / test splits as tensors. The test split is for labelling
only (the analyzer sees train and val metrics, as a user's run would log them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Task", "make_task"]


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "classification" | "regression"
    x: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # train, val, test inputs
    y: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    classes: int  # 0 for regression
    seq: bool = False  # inputs are (batch, time, features)

    @property
    def in_features(self) -> int:
        return int(self.x[0].shape[-1])

    @property
    def out_features(self) -> int:
        return self.classes or 1


def _split(x: np.ndarray, y: np.ndarray, n_train: int, n_val: int, rng: np.random.Generator):
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    parts = (slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, None))
    return tuple(x[p] for p in parts), tuple(y[p] for p in parts)


def _standardize(xs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    mu, sd = xs[0].mean(0), xs[0].std(0) + 1e-6
    return tuple((x - mu) / sd for x in xs)


def _tensors(xs, ys, classes: int):
    xt = tuple(torch.as_tensor(x, dtype=torch.float32) for x in xs)
    if classes:
        yt = tuple(torch.as_tensor(y, dtype=torch.long) for y in ys)
    else:
        yt = tuple(torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1) for y in ys)
    return xt, yt


def _sequences(rng: np.random.Generator, n: int, length: int, kind: str):
    """Generated sequence tasks: `sum` (regression on a noisy running sum; `sum_noisy`
    with seven times the noise, enough for a small split to be memorized), `majority`
    (is the sign of the sum positive: long-range dependence for recurrent nets) and
    `argmax` (which of the four inputs has the largest sum: a state of four numbers to
    carry, more than a one- or two-unit model holds)."""
    x = rng.normal(size=(n, length, 4)).astype(np.float32)
    if kind == "argmax":
        return x, x.sum(axis=1).argmax(axis=1).astype(np.int64)
    weights = np.array([1.0, -0.5, 0.25, 0.0], dtype=np.float32)
    total = (x @ weights).sum(axis=1)
    if kind == "majority":
        return x, (total > 0).astype(np.int64)
    noise = 0.7 if kind == "sum_noisy" else 0.1
    return x, (total / np.sqrt(length) + noise * rng.normal(size=n)).astype(np.float32)


def make_task(name: str, seed: int = 0, n_train: int | None = None) -> Task:
    """A task by name; `n_train` shrinks the training split (overfitting setups)."""
    from sklearn import datasets

    rng = np.random.default_rng(1000 + seed)
    if name == "digits":
        d = datasets.load_digits()
        xs, ys = _split(d.data.astype(np.float32), d.target, n_train or 1200, 300, rng)
        xs = tuple(x / 16.0 for x in xs)
        return Task(name, "classification", *_tensors(xs, ys, 10), classes=10)
    if name == "digits_image":
        d = datasets.load_digits()
        xs, ys = _split(
            d.images.astype(np.float32)[:, None] / 16.0, d.target, n_train or 1200, 300, rng
        )
        return Task(name, "classification", *_tensors(xs, ys, 10), classes=10)
    if name == "cancer":
        d = datasets.load_breast_cancer()
        xs, ys = _split(d.data.astype(np.float32), d.target, n_train or 380, 90, rng)
        return Task(name, "classification", *_tensors(_standardize(xs), ys, 2), classes=2)
    if name == "blobs":
        x, y = datasets.make_classification(
            n_samples=3000,
            n_features=20,
            n_informative=8,
            n_classes=4,
            n_clusters_per_class=2,
            class_sep=1.0,
            flip_y=0.02,
            random_state=seed,
        )
        xs, ys = _split(x.astype(np.float32), y, n_train or 2000, 500, rng)
        return Task(name, "classification", *_tensors(_standardize(xs), ys, 4), classes=4)
    if name in ("friedman", "friedman_noisy"):
        # The noisy variant: noise near the target's own spread, for a small split to fit.
        noise = 3.0 if name == "friedman_noisy" else 0.5
        x, y = datasets.make_friedman1(
            n_samples=3000, n_features=10, noise=noise, random_state=seed
        )
        xs, ys = _split(
            x.astype(np.float32), ((y - 14.4) / 4.9).astype(np.float32), n_train or 2000, 500, rng
        )
        return Task(name, "regression", *_tensors(_standardize(xs), ys, 0), classes=0)
    if name == "teacher":
        # A noiseless target: the training loss can reach (numerically) zero.
        x = rng.normal(size=(3000, 16)).astype(np.float32)
        w1, w2 = rng.normal(size=(16, 32)) / 4, rng.normal(size=(32, 1)) / 5
        y = (np.tanh(x @ w1) @ w2).astype(np.float32).ravel()
        xs, ys = _split(x, y, n_train or 2000, 500, rng)
        return Task(name, "regression", *_tensors(xs, ys, 0), classes=0)
    if name == "interact":
        # Pairwise products: no linear trend at all, and more than a unit or two can carry.
        x = rng.normal(size=(3000, 8)).astype(np.float32)
        y = (x[:, 0::2] * x[:, 1::2]).sum(axis=1) / 2 + 0.3 * rng.normal(size=3000)
        xs, ys = _split(x, y.astype(np.float32), n_train or 2000, 500, rng)
        return Task(name, "regression", *_tensors(xs, ys, 0), classes=0)
    if name in ("seq_sum", "seq_sum_noisy", "seq_majority", "seq_argmax"):
        x, y = _sequences(rng, 2400, 30 if name == "seq_majority" else 20, name[4:])
        classes = {"seq_majority": 2, "seq_argmax": 4}.get(name, 0)
        xs, ys = _split(x, y, n_train or 1600, 400, rng)
        return Task(
            name,
            "classification" if classes else "regression",
            *_tensors(xs, ys, classes),
            classes=classes,
            seq=True,
        )
    raise ValueError(f"unknown task {name!r}")
