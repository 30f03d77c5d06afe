"""The kind classifier: gradient-boosted trees over curve features (features.py).

The rules measure (where the loss blew up, how far val_loss rose, what to change); this
model decides which condition a run primarily shows. Its trees were fitted on the family
corpus (bench/families) by `python -m bench.families.model --write` and are stored as
plain arrays in kind_model.json, evaluated here with numpy: no training library at run
time, and the same answer on every machine. How well it generalises is measured by
leaving whole model families out of the fit (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from services.analyzer.features import FEATURES
from services.analyzer.stats import FloatArray, IntArray

__all__ = ["MODEL_PATH", "KindModel", "default_model"]

MODEL_PATH = Path(__file__).with_name("kind_model.json")


@dataclass(frozen=True)
class KindModel:
    """An additive ensemble of regression trees, one score per class, softmax on top.

    Trees are padded to a common node count; a leaf points to itself, so walking every
    tree `depth` levels at once lands each on its leaf."""

    classes: tuple[str, ...]
    features: tuple[str, ...]
    init: FloatArray  # (classes,)
    scale: float  # the boosting learning rate
    tree_class: IntArray  # (trees,) the class each tree adds to
    feature: IntArray  # (trees, nodes) -1 at leaves
    threshold: FloatArray  # (trees, nodes)
    left: IntArray  # (trees, nodes)
    right: IntArray
    value: FloatArray  # (trees, nodes)
    depth: int

    def probabilities(self, x: FloatArray) -> dict[str, float]:
        """Class probabilities for one feature vector (in `features` order)."""
        n = self.feature.shape[0]
        rows = np.arange(n)
        node = np.zeros(n, dtype=np.int64)
        for _ in range(self.depth):
            f = self.feature[rows, node]
            go_left = x[np.maximum(f, 0)] <= self.threshold[rows, node]
            nxt = np.where(go_left, self.left[rows, node], self.right[rows, node])
            node = np.where(f < 0, node, nxt)
        leaf = self.value[rows, node]
        scores = self.init + self.scale * np.bincount(
            self.tree_class, weights=leaf, minlength=len(self.classes)
        )
        scores -= scores.max()
        p = np.exp(scores)
        p /= p.sum()
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "features": list(self.features),
            "init": self.init.tolist(),
            "scale": self.scale,
            "depth": self.depth,
            "trees": [
                {
                    "class": int(self.tree_class[t]),
                    "feature": self.feature[t].tolist(),
                    # Exact: a split sits midway between two training values, and a
                    # rounded one can pass a value the fitted tree sent the other way.
                    "threshold": self.threshold[t].tolist(),
                    "left": self.left[t].tolist(),
                    "right": self.right[t].tolist(),
                    "value": [round(float(v), 6) for v in self.value[t]],
                }
                for t in range(self.feature.shape[0])
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KindModel:
        trees: Sequence[Mapping[str, Any]] = data["trees"]
        width = max(len(t["feature"]) for t in trees)

        def padded(key: str, fill: float, dtype: type) -> Any:
            out: np.ndarray = np.full((len(trees), width), fill, dtype=dtype)
            for i, t in enumerate(trees):
                out[i, : len(t[key])] = t[key]
            return out

        features = tuple(data["features"])
        if features != FEATURES:
            raise ValueError("kind_model.json was fitted on other features: refit it")
        return cls(
            classes=tuple(data["classes"]),
            features=features,
            init=np.asarray(data["init"], dtype=np.float64),
            scale=float(data["scale"]),
            tree_class=np.asarray([t["class"] for t in trees], dtype=np.int64),
            feature=padded("feature", -1, np.int64),
            threshold=padded("threshold", 0.0, np.float64),
            left=padded("left", 0, np.int64),
            right=padded("right", 0, np.int64),
            value=padded("value", 0.0, np.float64),
            depth=int(data["depth"]),
        )


@cache
def default_model() -> KindModel:
    """The shipped model (read once per process)."""
    return KindModel.from_json(json.loads(MODEL_PATH.read_text()))
