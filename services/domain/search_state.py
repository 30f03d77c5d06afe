"""What lazy search and pruning decide from: a sweep's state and the trial asked for."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from services.domain.stored_specs import decode_sweep_spec
from services.specs import SweepSpec


@dataclass(frozen=True)
class LazySweep:
    """A lazy sweep with room for one more trial, numbered `next_number`."""

    id: int
    project_id: int
    method: str
    spec: dict[str, Any]
    metric_name: str
    metric_goal: str
    next_number: int

    @cached_property
    def sweep_spec(self) -> SweepSpec:
        """`spec` decoded, once per record; StoredSpecError if it no longer decodes."""
        return decode_sweep_spec(self.spec, sweep_id=self.id)


@dataclass(frozen=True)
class AskedTrial:
    """The trial to create. With `error`, it is recorded failed at once (its params could
    not make a valid trial): it still counts against max_trials, so a sweep whose space
    keeps giving invalid trials ends instead of asking forever."""

    params: dict[str, Any]
    spec: dict[str, Any]
    max_restarts: int
    error: str | None = None


@dataclass(frozen=True)
class PruningContext:
    """What a running trial's pruning decisions need to know about its sweep."""

    sweep_id: int
    trial_id: int
    spec: dict[str, Any]
    metric_name: str
    metric_goal: str
