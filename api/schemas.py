"""Request and response bodies. Domain objects go out through these, never ORM rows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, NotRequired, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

from services.domain.finding_records import StoredFinding
from services.domain.records import Page, Run, Series, Sweep, Trial, TrialEvent
from services.specs import Metric, Text

T = TypeVar("T")

MAX_STEP = 2**63 - 1
MetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$"),
]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(Out, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")

    @classmethod
    def build(cls, page: Page[Any], items: list[T]) -> PageOut[T]:
        nxt = page.offset + len(page.items)
        return cls(
            items=items,
            total=page.total,
            limit=page.limit,
            offset=page.offset,
            next_offset=nxt if nxt < page.total else None,
        )


class ProjectOut(Out):
    id: int
    name: str
    created_at: datetime


class TokenOut(Out):
    id: int
    project_id: int
    name: str
    prefix: str
    is_admin: bool
    role: str = Field(description="admin, member or viewer (read-only)")
    created_at: datetime


class IssuedTokenOut(BaseModel):
    token: TokenOut
    secret: str = Field(description="The bearer token. Shown once: lrlab stores only its hash.")


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: MetricName = "token"
    role: Literal["member", "viewer"] = Field(
        default="member",
        description="member: submits, cancels and logs; viewer: reads only (a dashboard)",
    )


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.-]*$")
    ]


class ProjectCreated(BaseModel):
    project: ProjectOut
    token: IssuedTokenOut


class MetricSpecOut(BaseModel):
    name: str
    goal: str


class SweepOut(Out):
    id: int
    project_id: int
    name: str
    method: str
    status: str
    metric: MetricSpecOut
    max_trials: int | None
    max_concurrent: int
    trial_counts: dict[str, int]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    spec: dict[str, Any]
    status_reason: str | None = Field(
        default=None,
        description="Why the sweep is in its status, when that is not plain: why it ended "
        "by itself (a failed sweep's failure_policy; a finished sweep's metric target "
        "reached), or what a running sweep's queued trials wait for that no node has.",
    )

    @classmethod
    def of(cls, s: Sweep) -> SweepOut:
        return cls(
            id=s.id,
            project_id=s.project_id,
            name=s.name,
            method=s.method,
            status=s.status.value,
            metric=MetricSpecOut(name=s.metric_name, goal=s.metric_goal),
            max_trials=s.max_trials,
            max_concurrent=s.max_concurrent,
            trial_counts=s.trial_counts,
            created_at=s.created_at,
            updated_at=s.updated_at,
            finished_at=s.finished_at,
            spec=s.spec,
            status_reason=s.status_reason,
        )


class SweepSubmittedOut(SweepOut):
    """The answer to POST /sweeps: the sweep, and what it has that is likely unintended."""

    warnings: list[str] = Field(
        default_factory=list,
        description='Each a sentence naming its key, e.g. "metric.goal: minimizing '
        'val_accuracy, where higher is better; did you mean maximize?". The sweep was '
        "stored all the same.",
    )

    @classmethod
    def submitted(cls, s: Sweep, warnings: list[str]) -> SweepSubmittedOut:
        return cls(**dict(SweepOut.of(s)), warnings=warnings)


class TrialOut(Out):
    id: int
    sweep_id: int
    project_id: int
    number: int
    status: str
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
    stop_reason: str | None = None
    kind: str = "trained"  # "trained" (run by a worker) or "external" (logged with POST /runs)
    last_step: int | None = None  # the last step a heartbeat or the final report named
    heartbeat_at: datetime | None = None  # the last sign of life of its worker or script
    status_reason: str | None = Field(
        default=None,
        description="Why a queued trial waits when its wait will not end by itself: no node "
        "of the cluster has what it asks for.",
    )

    @classmethod
    def of(cls, t: Trial) -> TrialOut:
        return cls.model_validate(t)


class TrialEventOut(Out):
    status: str
    at: datetime
    detail: str | None

    @classmethod
    def of(cls, e: TrialEvent) -> TrialEventOut:
        return cls(status=e.status.value, at=e.at, detail=e.detail)


MetricStep = Annotated[int, Field(ge=0, le=MAX_STEP)]
MetricValue = Annotated[
    float,
    Field(description='A number, or "NaN", "Infinity", "-Infinity" (stored as such).'),
]
MAX_TIME = 1e11  # Unix seconds: the year 5138
PointTime = Annotated[
    float | None, Field(ge=0, le=MAX_TIME, description="Unix seconds; default now.")
]


class PointIn(TypedDict):
    # A TypedDict, not a model: a 5,000-point batch validates without building objects.
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    name: MetricName
    step: MetricStep
    value: MetricValue
    time: NotRequired[PointTime]


F64_COLUMN = "Base64 (standard alphabet, padded) of little-endian IEEE-754 float64s, one per step"


class SeriesIn(TypedDict):
    """Points of one metric as columns: `values[i]` (and `times[i]`, if given) at
    `steps[i]`. The columns have the same length. Values come as a JSON list (`values`)
    or packed as float64s (`values_f64`), exactly one of the two; times likewise
    (`times` or `times_f64`), or neither."""

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["values"]}, {"required": ["values_f64"]}],
            "not": {"required": ["times", "times_f64"]},
        },
    )

    name: MetricName
    steps: list[MetricStep]
    values: NotRequired[list[MetricValue]]
    values_f64: NotRequired[
        Annotated[
            str,
            Field(
                description=f"{F64_COLUMN}, instead of values: the cheapest form to encode. "
                "NaN and the infinities are stored as such.",
                json_schema_extra={"contentEncoding": "base64"},
            ),
        ]
    ]
    times: NotRequired[
        Annotated[
            list[PointTime] | None,
            Field(description="Unix seconds per point (null: now); all now if left out."),
        ]
    ]
    times_f64: NotRequired[
        Annotated[
            str,
            Field(
                description=f"{F64_COLUMN}, instead of times: Unix seconds, finite, "
                "from 0 to 1e11.",
                json_schema_extra={"contentEncoding": "base64"},
            ),
        ]
    ]


class MetricBatch(TypedDict):
    """Points as rows (`points`), as columns per metric (`series`), or both: one batch,
    stored in one transaction. Every point counts towards the per-request limit."""

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["points"]}, {"required": ["series"]}]},
    )

    points: NotRequired[list[PointIn]]
    series: NotRequired[list[SeriesIn]]


METRIC_BATCH = TypeAdapter(MetricBatch)


class IngestOut(BaseModel):
    accepted: int = Field(description="Distinct (name, step) points in the batch.")


class SeriesOut(BaseModel):
    # Non-finite values travel as the strings "NaN", "Infinity" and "-Infinity".
    model_config = ConfigDict(ser_json_inf_nan="strings")

    name: str
    steps: list[int]
    values: list[float]
    times: list[float]
    total: int = Field(
        description="Points in the requested range (downsampled reads) or returned (raw reads)."
    )
    downsampled: bool
    next_start: int | None = Field(description="Raw reads cut at `limit` continue from here.")

    @classmethod
    def of(cls, s: Series) -> SeriesOut:
        return cls(
            name=s.name,
            steps=s.steps,
            values=s.values,
            times=s.times,
            total=s.total,
            downsampled=s.downsampled,
            next_start=s.next_start,
        )


class SeriesSetOut(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings")
    trial_id: int
    series: list[SeriesOut]


class AnalysisOut(BaseModel):
    trial_id: int
    status: str
    provisional: bool = Field(description="The trial is still running: findings may change.")
    kinds: list[str] = Field(description="Finding kinds, most severe first; ['healthy'] if none.")
    findings: list[dict[str, Any]] = Field(
        description="kind, severity, confidence, step, summary, evidence, recommendation, "
        "changes (spec paths to values), alternatives, provisional"
    )
    analyzer_version: str | None = Field(
        default=None,
        description="The analyzer rules that made this diagnosis (a digest of their code); "
        "a finished trial is diagnosed again when lrlab's rules change.",
    )


class FindingOut(BaseModel):
    """A stored finding: the analyzer's finding, where it belongs, and whether it holds."""

    id: int
    trial_id: int
    sweep_id: int | None
    kind: str
    severity: str
    confidence: float
    step: int | None = Field(description="Where the condition starts; null: no onset.")
    summary: str = Field(description="The evidence as a sentence, with numbers from the series.")
    evidence: dict[str, Any] = Field(description='Numbers; non-finite ones as "NaN", "Infinity".')
    recommendation: str
    changes: dict[str, Any] = Field(description="Spec paths to the values recommended.")
    alternatives: list[dict[str, Any]]
    provisional: bool = Field(description="Found while the trial was running: it may change.")
    active: bool = Field(description="False: a later analysis no longer finds it.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, f: StoredFinding) -> FindingOut:
        return cls.model_validate(f, from_attributes=True)


class RegistryEntryOut(BaseModel):
    name: str
    description: str
    params: dict[str, Any]


class HealthOut(BaseModel):
    status: str
    database: str
    version: str


class RunCreate(BaseModel):
    """An external run, like `wandb.init`: a name, the script's config, tags, and the
    metric that ranks it. Its metrics go to POST /trials/{id}/metrics (any names)."""

    model_config = ConfigDict(extra="forbid")

    name: Text = "run"
    config: dict[str, Any] = Field(default_factory=dict, description="Free JSON (finite numbers).")
    tags: list[Text] = Field(default_factory=list, max_length=64)
    metric: Metric = Field(default_factory=Metric)
    metric_names: dict[MetricName, MetricName] = Field(
        default_factory=dict,
        description="Logged name -> the analysed series it is (train_loss, val_loss, "
        "val_accuracy, lr, grad_norm), one name each; read before the canonical names "
        "and the common aliases (docs/metric-names.md).",
    )


class RunFinish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"] | None = Field(
        default=None, description="Default: succeeded (cancelled if a cancel was asked for)."
    )


class RunOut(BaseModel):
    id: int = Field(description="The run's trial id: every /trials/{id} route works on it.")
    sweep_id: int
    project_id: int
    name: str
    status: str
    config: dict[str, Any]
    tags: list[str]
    metric: MetricSpecOut
    metric_names: dict[str, str] = Field(description="The names the run declared.")
    last_step: int | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_seen_at: datetime | None = Field(
        description="The last heartbeat or metric batch from the run's script. A running run "
        "not heard from for run_silence_seconds (default 600) ends failed."
    )
    stop_reason: str | None = Field(description="Why the run ended, when not by finish().")

    @classmethod
    def of(cls, run: Run) -> RunOut:
        t = run.trial
        return cls(
            id=t.id,
            sweep_id=t.sweep_id,
            project_id=t.project_id,
            name=run.name,
            status=t.status.value,
            config=t.params,
            tags=run.tags,
            metric=MetricSpecOut(name=run.metric_name, goal=run.metric_goal),
            metric_names=t.spec.get("metric_names") or {},
            last_step=t.last_step,
            cancel_requested=t.cancel_requested,
            created_at=t.created_at,
            started_at=t.started_at,
            finished_at=t.finished_at,
            last_seen_at=t.heartbeat_at,
            stop_reason=t.stop_reason,
        )


class SweepAnalysisOut(BaseModel):
    """What the sweep says about the learning rate, from every trial's diagnosis."""

    # Non-finite figures travel as the strings "NaN", "Infinity" and "-Infinity".
    model_config = ConfigDict(ser_json_inf_nan="strings")

    sweep_id: int
    status: str
    metric: MetricSpecOut
    provisional: bool = Field(
        description="A trial is still queued or running: the analysis may change."
    )
    trials: dict[str, int] = Field(description="total, with_data, and a count per status.")
    best: dict[str, Any] | None = Field(
        description="The trial with the best final metric: params, optimizer, lr (after "
        "lr_scaling), spec_lr, batch_size, final, best; null when none has a finite value."
    )
    sensitivity: list[dict[str, Any]] = Field(
        description="Per (optimizer, batch_size): the trials by lr (final and best metric, "
        "outcome: ok, too_slow, diverged) and the stable lr range between the largest too-slow "
        "lr (low) and the smallest diverging one (high); a side not reached is null."
    )
    batch_scaling: list[dict[str, Any]] = Field(
        description="Per optimizer: the best lr per batch size, the slope of log(best lr) vs "
        "log(batch size) and the closer rule (linear ~1, sqrt ~0.5), or why there is none."
    )
    finding_counts: dict[str, int] = Field(description="Trials with each finding kind.")
    summary: str = Field(description="What to do next, in one paragraph.")
    advice: list[str] = Field(description="The summary's clauses, most important first.")
    diagnoses: dict[str, int] = Field(
        description="Trial diagnoses read from the cache vs computed for this request."
    )


class LrFindOut(BaseModel):
    """An LR range test: its loss-vs-lr curve and the lrs it suggests, with the reasoning.
    Provisional while the test runs."""

    # Non-finite losses travel as the strings "NaN", "Infinity" and "-Infinity".
    model_config = ConfigDict(ser_json_inf_nan="strings")

    sweep_id: int
    trial_id: int
    status: str
    provisional: bool
    stop_reason: str | None = Field(description="Why the test ended before its last step.")
    error: str | None
    options: dict[str, Any] = Field(description="min_lr, max_lr, steps, smoothing, ...")
    curve: dict[str, Any] = Field(
        description="Columns steps, lr, loss, smoothed (reduced to at most max_points, "
        "keeping the extremes); points: the whole curve's length."
    )
    verdict: str = Field(
        description="ok, never_blew_up (max_lr too low), blew_up_at_once (min_lr too high), "
        "no_descent, too_few_points."
    )
    summary: str
    suggestions: list[dict[str, Any]] = Field(
        description="method (steepest, minimum, valley), lr, reasoning."
    )
    recommended: dict[str, Any] | None
    bounds: dict[str, Any] | None = Field(
        description="Log-uniform low and high for a follow-up sweep, with the reasoning."
    )
    notes: list[str]


class RecommendationOut(BaseModel):
    """An lr learned from the project's finished trials, or why there is none."""

    query: dict[str, Any] = Field(description="The query as understood (defaults filled in).")
    enough_history: bool
    lr: float | None = Field(description="The suggested lr at the asked batch size.")
    range: dict[str, float] | None = Field(description="low and high of a good lr range.")
    match: str | None = Field(
        description="How far the match was widened: exact, batch_size_adjusted, "
        "optimizer_near, any_budget or any_schedule."
    )
    batch_size_rule: str | None = Field(description="linear or sqrt, when lrs were moved.")
    metric: dict[str, str] | None = Field(description="The metric the trials were ranked by.")
    reasoning: str
    notes: list[str]
    matched_on: list[str] = Field(
        default_factory=list,
        description="What every counted trial shares with the query: task, model, "
        "optimizer, its knobs (momentum, nesterov, betas), batch_size, schedule, budget.",
    )
    widened: list[str] = Field(
        default_factory=list,
        description="Each part of the query let go of for want of trials, in words, with "
        "what the counted trials had there instead.",
    )
    evidence: dict[str, Any] = Field(
        description="count (ranked trials), considered, trial_ids (best first), "
        "top_trial_ids (behind the suggestion), diverged_trial_ids, too_slow_trial_ids."
    )
    trials: list[dict[str, Any]] = Field(
        description="Each trial used: lr, lr_at_batch_size, batch_size, schedule, outcome, "
        "final, optimizer_params, budget (max_steps, epochs, steps)."
    )
