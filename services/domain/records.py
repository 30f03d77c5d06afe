"""Frozen domain objects the store hands out: never ORM rows, never sessions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Generic, TypeVar

from services.domain.kinds import TrialKind
from services.domain.stored_specs import decode_policy, decode_sweep_spec, decode_trial_spec
from services.specs import SweepSpec, TrialSpec
from services.specs.sweep import Policy

T = TypeVar("T")


class TrialStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PRUNED = "pruned"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_TRIAL_STATES


TERMINAL_TRIAL_STATES = frozenset(
    {TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.PRUNED, TrialStatus.CANCELLED}
)


class SweepStatus(enum.StrEnum):
    RUNNING = "running"  # has trials that are queued or running
    # every trial reached a terminal state, or its metric target was reached (status_reason)
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"  # stopped by its failure_policy: its trials kept failing

    @property
    def is_terminal(self) -> bool:
        return self is not SweepStatus.RUNNING


TERMINAL_SWEEP_STATES = frozenset(s for s in SweepStatus if s.is_terminal)


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True)
class ApiToken:
    id: int
    project_id: int
    name: str
    prefix: str  # first characters of the secret, to tell tokens apart in listings
    is_admin: bool
    created_at: datetime
    read_only: bool = False  # a viewer's: reads only

    @property
    def role(self) -> str:
        """admin (also manages tokens), member (submits, cancels, logs) or viewer (reads)."""
        return "admin" if self.is_admin else "viewer" if self.read_only else "member"


@dataclass(frozen=True)
class IssuedToken:
    """A token at creation time: the only moment its secret exists outside the hash."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class Sweep:
    id: int
    project_id: int
    name: str
    method: str
    spec: dict[str, Any]
    status: SweepStatus
    metric_name: str
    metric_goal: str
    max_trials: int | None
    max_concurrent: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    trial_counts: dict[str, int] = field(default_factory=dict)
    # Why it is in its status, when that is not plain: why it ended by itself (it failed,
    # or its metric target was reached), or, while it runs, what its queued trials wait
    # for that no node has.
    status_reason: str | None = None

    @cached_property
    def sweep_spec(self) -> SweepSpec:
        """`spec` decoded, once per record; StoredSpecError if it no longer decodes."""
        return decode_sweep_spec(self.spec, sweep_id=self.id)

    @cached_property
    def policy(self) -> Policy:
        """The live stop policy of `spec` (defaults when it names none)."""
        return decode_policy(self.spec, sweep_id=self.id)


@dataclass(frozen=True)
class Trial:
    id: int
    sweep_id: int
    project_id: int
    number: int
    status: TrialStatus
    params: dict[str, Any]
    spec: dict[str, Any]
    attempt: int
    max_restarts: int
    cancel_requested: bool
    error: str | None
    traceback: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None = None  # the scheduler that launched the current attempt
    stop_reason: str | None = None
    last_step: int | None = None  # the last step a heartbeat or the final report named
    kind: TrialKind = TrialKind.TRAINED
    stop_status: TrialStatus | None = None  # a policy stop's terminal status, once asked for
    analyzed_step: int | None = None  # the last step the live analyzer looked at
    heartbeat_at: datetime | None = None  # the last sign of life of its worker or script
    # A queued trial's wait that will not end by itself: no node has what it asks for.
    status_reason: str | None = None

    @cached_property
    def trial_spec(self) -> TrialSpec:
        """`spec` decoded, once per record; StoredSpecError if it no longer decodes. An
        external run has no TrialSpec (its `spec` holds the metric names it declared)."""
        if self.kind is TrialKind.EXTERNAL:
            raise TypeError(f"trial {self.id} is an external run: it has no TrialSpec")
        return decode_trial_spec(self.spec, trial_id=self.id)


@dataclass(frozen=True)
class PastTrial:
    """A sweep's trial as search and pruning see it: its params, and the sweep metric's
    values at its 1st, 2nd, ... evaluation (at `steps`)."""

    number: int
    status: TrialStatus
    params: Mapping[str, Any] = field(default_factory=dict)
    values: tuple[float, ...] = ()
    steps: tuple[int, ...] = ()
    trial_id: int | None = None


@dataclass(frozen=True)
class TrialEvent:
    trial_id: int
    status: TrialStatus
    at: datetime
    detail: str | None


@dataclass(frozen=True)
class Series:
    """One metric of one trial, in step order. Non-finite values are kept as floats."""

    name: str
    steps: list[int]
    values: list[float]
    times: list[float]
    total: int  # downsampled reads: points in the range; raw reads: points returned
    downsampled: bool = False
    next_start: int | None = None  # raw reads cut at a limit continue from here


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Run:
    """An external run: its trial (config in `trial.params`, declared metric names in
    `trial.spec`) and what its sweep records."""

    trial: Trial
    name: str
    tags: list[str]
    metric_name: str
    metric_goal: str


@dataclass(frozen=True)
class PastRun:
    trial_id: int
    sweep_id: int
    status: str
    spec: dict[str, Any]
    stop_reason: str | None
    analysis: dict[str, Any] | None  # the cached diagnosis, if any
    metric: str  # the sweep's metric
    goal: str
    final: float | None  # its last value (NaN kept); None when never logged
    final_train_loss: float | None
    last_step: int | None = None  # its last step (how long an epochs budget ran)


@dataclass(frozen=True)
class SeriesSummary:
    trial_id: int
    name: str
    points: int | None  # None unless the extremes were asked for
    last_step: int
    last_value: float  # NaN / inf kept
    first_value: float  # the value at the smallest step; NaN / inf kept
    low: float | None  # the smallest finite value; None when none is or when not asked for
    high: float | None


@dataclass(frozen=True)
class CachedAnalysis:
    trial_id: int
    status: TrialStatus  # the trial's status now
    last_step: int | None  # the trial's last step now
    analyzed_step: int | None  # the last step the cached analysis saw
    analysis: dict[str, Any] | None  # None: never analysed

    @property
    def is_current(self) -> bool:
        """True when the cache saw everything there is and the trial will not change.
        A cache written while the trial ran says so itself (its "provisional" flag), so a
        terminal trial whose last pass was provisional is stale too."""
        if self.analysis is None or self.analyzed_step != self.last_step:
            return False
        return self.status.is_terminal and not self.analysis.get("provisional", True)


# (name, step, value, recorded_at or None for "now")
PointIn = tuple[str, int, float, float | None]
