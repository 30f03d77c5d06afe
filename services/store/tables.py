"""SQLAlchemy tables. Only the store package touches these; callers get domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false, true
from sqlalchemy.types import TypeDecorator

from services.domain.kinds import TrialKind

# Stable constraint names so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, so BigInteger ids map to it there.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend: SQLite hands datetimes back naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # sha256 of the secret: tokens are 256-bit random, so a fast hash is enough.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # A viewer's token: it reads everything of its project and changes nothing.
    read_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SweepRow(Base):
    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    metric_name: Mapped[str] = mapped_column(String(200))
    metric_goal: Mapped[str] = mapped_column(String(16))
    max_trials: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrent: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Why a sweep is in its status when that is not plain: why it ended by itself ("stopped:
    # the first 5 trials all failed; ...", "target reached: ..."); null for a sweep that ran
    # out of trials or was cancelled.
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("sweep_id", "number"),
        # The scheduler's claim query: queued trials, oldest first.
        Index("ix_trials_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_restarts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The scheduler that launched the current attempt (cleared when the trial is requeued).
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Why it stopped, in words: "diverged: train_loss is nan at step 412", ...
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why a queued trial waits when no node of the cluster has what it asks for ("no node
    # has 1 GPU; largest node: 2 CPUs, 0 GPUs"); cleared once it fits or starts.
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # "trained": a sweep's trial the scheduler runs; "external": a run logged from elsewhere
    # (POST /runs), which the scheduler never claims or requeues.
    kind: Mapped[str] = mapped_column(
        String(16), default=TrialKind.TRAINED.value, server_default=TrialKind.TRAINED.value
    )
    # A stop asked for by a policy (e.g. the live analyzer on divergence): the terminal
    # status the trial takes when its worker honours the stop ("pruned"), with stop_reason.
    stop_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The last step the live analyzer looked at, so it only re-analyses trials with news.
    analyzed_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The latest diagnosis (Diagnosis.to_dict() plus the trial's summary figures), cached
    # so a sweep's analysis reads one row per trial instead of every series.
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The analyzer version that made it (also inside the JSON), as a column: the live
    # analyzer finds every finished trial whose rules changed without parsing the JSON.
    analyzer_version: Mapped[str | None] = mapped_column(String(32), nullable=True)


class TrialEventRow(Base):
    """Every status transition with its time: the trial's audit trail."""

    __tablename__ = "trial_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class MetricPointRow(Base):
    """One (trial, name, step) value. No foreign key: ingest speed matters more here, and
    trials are deleted through the store, which removes their points too."""

    __tablename__ = "metric_points"
    # On PostgreSQL the key carries the value too: a series is read in key order by an
    # index-only scan that never visits the table, whose pages interleave the points of
    # every trial written at the same time.
    __table_args__ = (
        PrimaryKeyConstraint("trial_id", "name", "step", postgresql_include=["value"]),
    )

    trial_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(BigInteger)
    # Nullable only because SQLite turns NaN into NULL; the store reads NULL back as NaN.
    value: Mapped[float | None] = mapped_column(Float(precision=53), nullable=True)
    recorded_at: Mapped[float] = mapped_column(Float(precision=53))  # unix seconds


class FindingRow(Base):
    """The current finding of one kind on one trial; the live analyzer updates it in place."""

    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("trial_id", "kind"),
        # Streams read "what changed in this sweep since t".
        Index("ix_findings_sweep_updated", "sweep_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True, nullable=True
    )
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    recommendation: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # False once a later analysis no longer sees it (e.g. a plateau the trial got out of).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The trial was still running when this was found: it may change.
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class NotificationRow(Base):
    """Webhook outbox: an event waiting for (or done with) delivery. Durable, so a restart
    loses no notification, and delivery runs apart from training so a bad hook blocks
    nothing."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    sweep_id: Mapped[int | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True, nullable=True
    )
    # Names the event once ("finding:<trial>:<kind>", "sweep_end:<sweep>"), so whoever
    # enqueues it twice (two servers, a restart) still sends it once.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when it was given up on (attempts exhausted); None while pending or delivered.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
