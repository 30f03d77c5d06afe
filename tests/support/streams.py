"""Reading the metric points out of stream events (the feed's or the SSE stream's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Key = tuple[int, str, int]  # (trial, name, step) of a point


def points(events: Sequence[Any]) -> list[Key]:
    """(trial, name, step) of every point in the metrics events (feed or SSE events)."""
    return [
        (e.data["trial_id"], p["name"], p["step"])
        for e in events
        if e.type == "metrics"
        for p in e.data["points"]
    ]
