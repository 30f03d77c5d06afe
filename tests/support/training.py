"""Running the trial runner in process: a sink that keeps every point in memory, a
control that stops it at a step, and a short digits spec to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.specs import TrialSpec
from workers.checkpoints import CheckpointStore
from workers.runner import TrainResult, train


class MemorySink:
    """The least a sink offers (add and flush): the runner adapts to it."""

    def __init__(self) -> None:
        self.points: dict[str, dict[int, float]] = {}
        self.flushes = 0

    def add(self, name: str, step: int, value: float) -> None:
        self.points.setdefault(name, {})[step] = value

    def flush(self) -> None:
        self.flushes += 1

    def series(self, name: str) -> list[float]:
        return [v for _, v in sorted(self.points.get(name, {}).items())]


class Control:
    """Asks the runner to stop once step `stop_at` has run (as a cancel would)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.last_step: int | None = None

    @property
    def stop_reason(self) -> str | None:
        if self.stop_at is None or self.last_step is None or self.last_step < self.stop_at:
            return None
        return "test stop"


def run(
    spec: dict[str, Any], tmp_path: Path, stop_at: int | None = None
) -> tuple[TrainResult, MemorySink]:
    control = Control(stop_at)
    sink = MemorySink()
    result = train(
        TrialSpec.model_validate(spec),
        sink=sink,
        checkpoints=CheckpointStore(tmp_path / "ckpt"),
        control=control,
    )
    return result, sink


def digits(**over: Any) -> dict[str, Any]:
    return {"task": "digits", "budget": {"max_steps": 60}, "eval_every": 10, **over}
