"""Webhook events waiting in the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SWEEP_END = "sweep_end:"


@dataclass(frozen=True)
class Notification:
    id: int
    project_id: int
    sweep_id: int | None
    key: str
    url: str
    event: dict[str, Any]
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    last_error: str | None
    created_at: datetime
