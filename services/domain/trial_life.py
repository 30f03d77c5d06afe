"""A trial's life as workers and streams report it: heartbeats and progress."""

from __future__ import annotations

from dataclasses import dataclass

from services.domain.records import TrialStatus

CANCELLED_BY_REQUEST = "cancelled by request"


@dataclass(frozen=True)
class Heartbeat:
    """The store's answer to a worker's heartbeat."""

    alive: bool  # False: the attempt lost its lease (requeued or finished); stop at once
    cancel_requested: bool  # the trial should stop; report it as cancelled


@dataclass(frozen=True)
class TrialProgress:
    id: int
    number: int
    status: TrialStatus
    attempt: int
    last_step: int | None
    stop_reason: str | None
    error: str | None
