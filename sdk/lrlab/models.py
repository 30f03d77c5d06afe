"""Typed results. Fields the server adds later are kept (extra="allow"), never an error.

Non-finite metric values arrive as the strings "NaN", "Infinity", "-Infinity" and become
floats here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")

TERMINAL_TRIAL = frozenset({"succeeded", "failed", "pruned", "cancelled"})
TERMINAL_SWEEP = frozenset({"finished", "cancelled", "failed"})


def to_float(value: Any) -> float:
    """A value of a series: a number, or "NaN" / "Infinity" / "-Infinity" (float() reads
    the API's spellings of non-finite values as they are)."""
    return float(value)


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Page(Model, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None = None


class Health(Model):
    status: str
    database: str
    version: str


class Project(Model):
    id: int
    name: str
    created_at: datetime


class Token(Model):
    id: int
    project_id: int
    name: str
    prefix: str
    is_admin: bool
    role: str = "member"  # admin, member, or viewer (read-only)
    created_at: datetime


class IssuedToken(Model):
    token: Token
    secret: str


class ProjectCreated(Model):
    """A new project and its first admin token (the secret is shown this once)."""

    project: Project
    token: IssuedToken


class RegistryEntry(Model):
    """A task, optimizer or schedule the server knows; `params` is the JSON schema of the
    parameters it takes."""

    name: str
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def param_names(self) -> list[str]:
        """The parameters it takes (`params` is their JSON schema)."""
        properties = self.params.get("properties", {})
        return list(properties) if isinstance(properties, dict) else []


class MetricSpec(Model):
    name: str
    goal: str


class Sweep(Model):
    id: int
    project_id: int
    name: str
    method: str
    status: str
    metric: MetricSpec
    max_trials: int | None = None
    max_concurrent: int
    trial_counts: dict[str, int] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    # What the server found likely unintended when the sweep was submitted (each a
    # sentence naming its key); only the answer to a submission has any.
    warnings: list[str] = Field(default_factory=list)
    # Why it ended by itself (it failed, or reached its metric target), or what a running
    # one's queued trials wait for.
    status_reason: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_SWEEP

    @property
    def trials_total(self) -> int:
        return sum(self.trial_counts.values())

    @property
    def trials_done(self) -> int:
        return sum(n for state, n in self.trial_counts.items() if state in TERMINAL_TRIAL)


class Trial(Model):
    id: int
    sweep_id: int
    project_id: int
    number: int
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 0
    max_restarts: int = 0
    cancel_requested: bool = False
    error: str | None = None
    traceback: str | None = None
    worker: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stop_reason: str | None = None
    kind: str = "trained"  # "trained" (run by a worker) or "external" (a logged run)
    last_step: int | None = None
    heartbeat_at: datetime | None = None
    # Why a queued trial waits when no node has what it asks for.
    status_reason: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_TRIAL


class TrialEvent(Model):
    status: str
    at: datetime
    detail: str | None = None


class Series(Model):
    """One metric of one trial, in step order."""

    name: str
    steps: list[int]
    values: list[float]
    times: list[float]
    total: int
    downsampled: bool = False
    next_start: int | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _non_finite(cls, values: Any) -> Any:
        return [to_float(v) for v in values] if isinstance(values, list) else values


class Finding(Model):
    """What the analyzer saw: kind (a stable snake_case id), how bad, where, and what to
    change. Fields beyond `kind` depend on the rule."""

    kind: str
    severity: str | None = None
    confidence: float | None = None
    step: int | None = None
    summary: str | None = None
    evidence: Any = None
    recommendation: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)
    alternatives: list[Any] = Field(default_factory=list)
    provisional: bool = False
    # Stored findings (GET .../findings, stream events) also say where they belong and
    # whether a later analysis still finds them.
    id: int | None = None
    trial_id: int | None = None
    sweep_id: int | None = None
    active: bool = True


class Analysis(Model):
    """A trial's diagnosis (provisional while it runs)."""

    trial_id: int
    status: str
    provisional: bool = False
    kinds: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    analyzer_version: str | None = None  # the server's rules that made it


class SweepAnalysis(Model):
    """What a sweep says about the learning rate: the best trial (params, optimizer, lr,
    batch_size, final and best metric), the lr sensitivity per (optimizer, batch_size)
    with its stable lr range, the best lr per batch size against the linear/sqrt scaling
    rules, trials per finding kind, and what to do next (`summary`, `advice`)."""

    sweep_id: int
    status: str | None = None
    metric: MetricSpec | None = None
    provisional: bool = False
    trials: dict[str, int] = Field(default_factory=dict)
    best: dict[str, Any] | None = None
    sensitivity: list[dict[str, Any]] = Field(default_factory=list)
    batch_scaling: list[dict[str, Any]] = Field(default_factory=list)
    finding_counts: dict[str, int] = Field(default_factory=dict)
    summary: str = ""
    advice: list[str] = Field(default_factory=list)


class IngestResult(Model):
    accepted: int


class RunInfo(Model):
    """An external run as the server sees it; `id` is its trial id."""

    id: int
    sweep_id: int
    project_id: int
    name: str
    status: str
    config: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    metric: MetricSpec | None = None
    metric_names: dict[str, str] = Field(default_factory=dict)  # declared: logged -> analysed
    last_step: int | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_seen_at: datetime | None = None  # the last heartbeat or metric batch
    stop_reason: str | None = None  # why it ended, when not by finish()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_TRIAL


class LrFind(Model):
    """An LR range test: the loss-vs-lr curve (columns steps, lr, loss, smoothed), the
    suggested lrs with their reasoning, the recommended one and log-uniform bounds for a
    follow-up sweep. Provisional while it runs."""

    sweep_id: int
    trial_id: int
    status: str
    provisional: bool = True
    stop_reason: str | None = None
    error: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    curve: dict[str, Any] = Field(default_factory=dict)
    verdict: str = ""
    summary: str = ""
    suggestions: list[dict[str, Any]] = Field(default_factory=list)
    recommended: dict[str, Any] | None = None
    bounds: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_TRIAL


class Recommendation(Model):
    """An lr learned from the project's finished trials, or why there is none
    (`enough_history` false)."""

    query: dict[str, Any] = Field(default_factory=dict)
    enough_history: bool = False
    lr: float | None = None
    range: dict[str, float] | None = None
    match: str | None = None
    batch_size_rule: str | None = None
    metric: dict[str, str] | None = None
    reasoning: str = ""
    notes: list[str] = Field(default_factory=list)
    # What every counted trial shares with the query, and each widening in words.
    matched_on: list[str] = Field(default_factory=list)
    widened: list[str] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    trials: list[dict[str, Any]] = Field(default_factory=list)
