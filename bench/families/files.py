"""The family corpus on disk: tests/corpus_families/<family>.npz, one file per family.

Each curve's series are float64 arrays (steps, values); its config, labels and the check
measurements sit in a JSON string beside them. Curves labelled "ambiguous" are kept out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CORPUS_DIR", "Curve", "read_all", "read_family", "write_family"]

CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "corpus_families"


@dataclass(frozen=True)
class Curve:
    family: str
    setup: str
    task: str
    lr: float
    config: dict[str, Any]
    label: str
    confirmed: tuple[str, ...]
    measured: dict[str, float]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.setup}@{self.lr:.3g}"

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Curve:
        series = {
            k: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
            for k, (s, v) in r["series"].items()
        }
        return cls(
            r["family"],
            r["setup"],
            r["task"],
            r["lr"],
            r["config"],
            r["label"],
            tuple(r["confirmed"]),
            r["measured"],
            series,
        )


def write_family(family: str, curves: list[Curve]) -> Path:
    CORPUS_DIR.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for i, c in enumerate(c for c in curves if c.label != "ambiguous"):
        meta.append(
            {
                "family": c.family,
                "setup": c.setup,
                "task": c.task,
                "lr": c.lr,
                "config": c.config,
                "label": c.label,
                "confirmed": list(c.confirmed),
                "measured": c.measured,
                "series": sorted(c.series),
            }
        )
        for name, (steps, values) in c.series.items():
            arrays[f"{i}/{name}/steps"] = steps.astype(np.int32)
            arrays[f"{i}/{name}/values"] = values.astype(np.float32)
    path = CORPUS_DIR / f"{family}.npz"
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def read_family(path: Path) -> list[Curve]:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        out = []
        for i, m in enumerate(meta):
            series = {
                name: (
                    data[f"{i}/{name}/steps"].astype(np.int64),
                    data[f"{i}/{name}/values"].astype(np.float64),
                )
                for name in m["series"]
            }
            out.append(
                Curve(
                    m["family"],
                    m["setup"],
                    m["task"],
                    m["lr"],
                    m["config"],
                    m["label"],
                    tuple(m["confirmed"]),
                    m["measured"],
                    series,
                )
            )
    return out


def read_all(directory: Path = CORPUS_DIR) -> list[Curve]:
    return [c for path in sorted(directory.glob("*.npz")) for c in read_family(path)]
