"""Server settings: one class, read from LRLAB_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRLAB_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".lrlab"),
        description="Where the embedded database, the admin token and checkpoints live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means an embedded SQLite file in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    ray_address: str | None = Field(
        default=None, description="An existing Ray cluster ('auto' or host:port); unset = local."
    )
    ray_num_cpus: float | None = Field(
        default=None, gt=0, description="CPUs of the local Ray instance; unset = all of them."
    )
    cluster_autoscaling: bool | None = Field(
        default=None,
        description="Whether the Ray cluster may gain nodes by itself. Off (a fixed "
        "cluster): a trial or sweep asking for more CPUs or GPUs than the largest node has "
        "is refused with a 422. On: it is accepted and its trials wait, with the reason, "
        "for a node that has them. Unset: off for the local Ray lrlab starts, on for a "
        "cluster named by LRLAB_RAY_ADDRESS.",
    )
    run_scheduler: bool = Field(
        default=True, description="Run the scheduler in `lrlab serve` (off: API only)."
    )
    lease_seconds: float = Field(
        default=30.0, gt=0, description="A running trial without a heartbeat this long is requeued."
    )
    run_silence_seconds: float = Field(
        default=600.0,
        gt=0,
        description="An external run with no metric batch and no heartbeat this long is "
        "marked failed: its script ended without finish() (the SDK beats every 30 s).",
    )
    idle_interval_max_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The longest wait of an idle background loop (scheduler, housekeeping, "
        "live analyzer, notifier): with nothing to do, a loop's wait doubles from its "
        "interval up to this. New work wakes it at once.",
    )
    run_analyzer: bool = Field(
        default=True, description="Run the live analyzer in `lrlab serve` (off: analyse on read)."
    )
    analyze_interval: float = Field(
        default=2.0, gt=0, description="Seconds between the live analyzer's passes."
    )
    analyze_min_new_steps: int = Field(
        default=20,
        ge=1,
        description="A running trial is analysed again after this many new steps (or a 50th "
        "of its steps so far, if more), or after analyze_max_wait with any.",
    )
    analyze_max_wait: float = Field(
        default=30.0, gt=0, description="Seconds a running trial with new steps waits at most."
    )
    analyze_max_points: int = Field(
        default=10_000,
        ge=100,
        description="Points per series a running trial's analysis reads (longer series are "
        "reduced to this by min/max buckets); the final analysis reads max_series_points.",
    )
    analyze_batch: int = Field(default=16, ge=1, description="Trials analysed per pass at most.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8765, ge=1, le=65535)

    max_trials_per_sweep: int = Field(default=10_000, ge=1)
    max_points_per_request: int = Field(default=50_000, ge=1)
    max_series_points: int = Field(
        default=100_000, ge=10, description="Most points one series read returns."
    )
    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=500, ge=1)

    stream_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often a live stream (SSE) looks for news."
    )
    stream_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="A quiet stream sends a comment this often."
    )
    stream_series_points: int = Field(
        default=5_000, ge=16, description="Points a stream reads per series per poll."
    )
    stream_poll_points: int = Field(
        default=20_000, ge=100, description="Points a stream reads per poll, all trials."
    )

    webhook_allowed_hosts: str = Field(
        default="",
        description="Hosts sweep webhooks may target, comma-separated: exact names or "
        "'*.example.com' (any subdomain). Empty: webhooks are disabled. A host that resolves "
        "to a private or loopback address must be listed exactly.",
    )
    webhook_secret: str | None = Field(
        default=None,
        description="If set, each webhook carries X-Lrlab-Signature: sha256=<HMAC of the body>.",
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Per connect/write/read of one delivery."
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="Wait before the first retry; doubles each attempt."
    )
    webhook_backoff_max_seconds: float = Field(default=600.0, gt=0)
    notifier_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the notifier looks for events to send."
    )

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _hosts_as_text(cls, value: object) -> object:
        return ",".join(map(str, value)) if isinstance(value, list | tuple) else value

    @property
    def webhook_hosts(self) -> tuple[str, ...]:
        """The allowlist, normalised (lowercase, no trailing dot, no blanks)."""
        hosts = (h.strip().lower().rstrip(".") for h in self.webhook_allowed_hosts.split(","))
        return tuple(h for h in hosts if h)

    @property
    def cluster_may_grow(self) -> bool:
        if self.cluster_autoscaling is not None:
            return self.cluster_autoscaling
        return self.ray_address is not None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'lrlab.db').resolve()}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
