"""Train one spec with lrlab's runner, in process, and keep its series in memory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from services.specs import TrialSpec
from workers.checkpoints import CheckpointStore
from workers.runner import train

__all__ = ["Recorded", "record"]

Recorded = tuple[dict[str, tuple[list[int], list[float]]], str, int]


class _MemorySink:
    def __init__(self) -> None:
        self.points: dict[str, dict[int, float]] = {}

    def add(self, name: str, step: int, value: float) -> None:
        self.points.setdefault(name, {})[step] = value

    def flush(self) -> None:
        pass


class _Control:
    stop_reason: str | None = None
    last_step: int | None = None


def record(spec: dict[str, Any]) -> Recorded:
    """(series by name, the trainer's outcome, steps run) of one training run."""
    # One thread: on a small shared machine more only spin against each other.
    torch.set_num_threads(1)
    sink = _MemorySink()
    with tempfile.TemporaryDirectory(prefix="lrlab-corpus-") as tmp:
        result = train(
            TrialSpec.model_validate(spec),
            sink=sink,
            checkpoints=CheckpointStore(Path(tmp)),
            control=_Control(),
        )
    series = {}
    for name, points in sink.points.items():
        steps = sorted(points)
        series[name] = (steps, [points[s] for s in steps])
    steps_run = 0 if result.last_step is None else result.last_step + 1
    return series, result.outcome.value, steps_run
