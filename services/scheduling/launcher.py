"""The port between the scheduler (services) and whatever executes trials (workers/Ray).

The scheduler decides what runs next and records every state change; a launcher only
starts, stops and reports on work. Tests drive the scheduler with an in-memory launcher;
`lrlab serve` plugs in the Ray launcher from workers/.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.domain.capacity import NodeResources


@dataclass(frozen=True)
class Assignment:
    """Everything a worker needs to run one attempt of one trial."""

    trial_id: int
    sweep_id: int
    project_id: int
    attempt: int
    spec: dict[str, Any]  # a TrialSpec as JSON
    database_url: str
    checkpoint_dir: Path
    cpus: float
    gpus: float


class RunOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # the budget ran out normally
    DIVERGED = "diverged"  # a non-finite loss: stopped at once, recorded as pruned
    CANCELLED = "cancelled"  # the trial saw its cancel flag and stopped
    FAILED = "failed"  # the training code raised: not retried
    LOST = "lost"  # the worker process or node died: retried from its checkpoint


@dataclass(frozen=True)
class RunReport:
    trial_id: int
    attempt: int
    outcome: RunOutcome
    detail: str | None = None  # why it stopped, in words
    error: str | None = None
    traceback: str | None = None
    last_step: int | None = None


class Launcher(abc.ABC):
    """Starts trial attempts and reports how they ended. Never touches trial state.

    An implementation calls `_ended()` as soon as an attempt's report is ready for poll(),
    from whatever thread learns it: the scheduler listens through `on_end` and records the
    report and fills the freed slot at once, rather than at its next periodic tick."""

    _on_end: Callable[[], None] | None = None

    @abc.abstractmethod
    def can_start(self, cpus: float, gpus: float) -> bool:
        """Whether the cluster has room for one more attempt with these resources now."""

    @abc.abstractmethod
    def launch(self, assignment: Assignment) -> None:
        """Start the attempt; returns at once."""

    @abc.abstractmethod
    def cancel(self, trial_id: int) -> None:
        """Stop the attempt of this trial by force (the graceful path is the cancel flag)."""

    @abc.abstractmethod
    def poll(self) -> list[RunReport]:
        """Attempts that ended since the last call; never blocks."""

    @abc.abstractmethod
    def running(self) -> set[int]:
        """Trial ids with an attempt in flight."""

    def nodes(self) -> list[NodeResources] | None:
        """What each alive node of the cluster offers in all (busy or not); None when the
        launcher cannot tell. The scheduler learns from it which trials no node can ever
        run, and the API refuses those on a fixed cluster."""
        return None

    def on_end(self, listener: Callable[[], None] | None) -> None:
        """Call `listener` (from any thread; it must not block) whenever an attempt ends;
        None stops the calls."""
        self._on_end = listener

    def _ended(self) -> None:
        listener = self._on_end
        if listener is not None:
            listener()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the cluster connection."""
