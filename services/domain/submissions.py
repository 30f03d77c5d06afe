"""What a client asks to create (sweeps, their trials, external runs), before it has ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NewTrial:
    params: dict[str, Any]
    spec: dict[str, Any]
    max_restarts: int


@dataclass(frozen=True)
class NewSweep:
    name: str
    method: str
    spec: dict[str, Any]
    metric_name: str
    metric_goal: str
    max_trials: int | None
    max_concurrent: int


@dataclass(frozen=True)
class NewRun:
    name: str
    config: dict[str, Any]
    tags: list[str]
    metric_name: str
    metric_goal: str
    metric_names: dict[str, str] = field(default_factory=dict)  # logged -> analysed name
