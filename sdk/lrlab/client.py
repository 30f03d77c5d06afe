"""`lrlab.Client`: every capability of an lrlab server as a typed method."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from lrlab._api_lr import LrApi
from lrlab._api_sweeps import SweepsApi
from lrlab._api_trials import TrialsApi
from lrlab._batcher import WhenFull
from lrlab._config import resolve_token, resolve_url
from lrlab._http import Http
from lrlab._pages import iterate, page_params
from lrlab._retry import RetryPolicy
from lrlab.handles import SweepHandle, TrialHandle
from lrlab.models import (
    Analysis,
    Health,
    IssuedToken,
    Page,
    Project,
    ProjectCreated,
    RegistryEntry,
    RunInfo,
    Token,
)
from lrlab.runs import Run


class Client(SweepsApi, TrialsApi, LrApi):
    """A connection to one lrlab server as one project (the token's).

    url and token default to LRLAB_URL and LRLAB_TOKEN (see lrlab._config). `timeout` is
    seconds per request (or an httpx.Timeout). Requests that cannot be harmed by a second
    try are retried `retries` times with exponential backoff and jitter on connection
    errors and 429/502/503/504, honouring Retry-After. `transport` replaces the network,
    e.g. an in-process app in tests.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        policy = RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff)
        self._http = Http(
            self.url, resolve_token(token), timeout=timeout, retry=policy, transport=transport
        )

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- handles ------------------------------------------------------------------------
    def sweep(self, sweep_id: int) -> SweepHandle:
        return SweepHandle(self, sweep_id)

    def trial(self, trial_id: int) -> TrialHandle:
        return TrialHandle(self, trial_id)

    # -- server, project, registries ---------------------------------------------------
    def health(self) -> Health:
        """Liveness and database reachability (needs no token)."""
        response = self._http.send("GET", "/health", retry=RetryPolicy(retries=0))
        return Health.model_validate(response.json())

    def project(self) -> Project:
        return Project.model_validate(self._http.call("GET", "/project"))

    def tokens(self) -> list[Token]:
        return [Token.model_validate(t) for t in self._http.call("GET", "/tokens")]

    def create_token(self, name: str = "token", role: str = "member") -> IssuedToken:
        """A new token of this project, "member" (submits, cancels, logs) or "viewer"
        (reads only); its secret is shown in this answer only."""
        body = {"name": name, "role": role}
        return IssuedToken.model_validate(self._http.call("POST", "/tokens", json=body))

    def revoke_token(self, token_id: int) -> None:
        self._http.call("DELETE", f"/tokens/{token_id}")

    def projects(self) -> list[Project]:
        """Every project (admin tokens only)."""
        return [Project.model_validate(p) for p in self._http.call("GET", "/projects")]

    def create_project(self, name: str) -> ProjectCreated:
        """A new project with its first admin token (admin tokens only)."""
        body = self._http.call("POST", "/projects", json={"name": name})
        return ProjectCreated.model_validate(body)

    def _registry(self, kind: str) -> list[RegistryEntry]:
        return [RegistryEntry.model_validate(e) for e in self._http.call("GET", f"/{kind}")]

    def tasks(self) -> list[RegistryEntry]:
        return self._registry("tasks")

    def optimizers(self) -> list[RegistryEntry]:
        return self._registry("optimizers")

    def schedules(self) -> list[RegistryEntry]:
        return self._registry("schedules")

    # -- external runs -------------------------------------------------------------------
    def start_run(
        self,
        name: str = "run",
        config: dict[str, Any] | None = None,
        *,
        tags: Sequence[str] = (),
        metric: str | None = None,
        goal: str | None = None,
        metric_names: Mapping[str, str] | None = None,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        max_points: int = 500_000,
        when_full: WhenFull = "block",
        heartbeat_interval: float = 30.0,
    ) -> Run:
        """Start a run logged from this process (like wandb.init). `metric`/`goal` name
        the series that ranks it. `metric_names` maps names this script logs to the
        series the analysis reads (train_loss, val_loss, val_accuracy, lr, grad_norm),
        e.g. {"my_loss": "train_loss"}, for names the usual aliases (`loss`,
        `eval_loss`, `learning_rate`, ...) do not cover. See `Run` for logging and
        lrlab._batcher for the buffer's policies. A background thread beats every
        `heartbeat_interval` seconds until finish(): the server ends a run failed after
        ten minutes without a sign of life (its script died without finishing it)."""
        body: dict[str, Any] = {"name": name, "config": config or {}, "tags": list(tags)}
        if metric_names:
            body["metric_names"] = dict(metric_names)
        if metric is not None or goal is not None:
            body["metric"] = {k: v for k, v in (("name", metric), ("goal", goal)) if v is not None}
        info = RunInfo.model_validate(self._http.call("POST", "/runs", json=body))
        return Run(
            self._http,
            info,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_points=max_points,
            when_full=when_full,
            heartbeat_interval=heartbeat_interval,
        )

    def list_runs(
        self, status: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> Page[RunInfo]:
        body = self._http.call("GET", "/runs", params=page_params(status, limit, offset))
        return Page[RunInfo].model_validate(body)

    def iter_runs(self, status: str | None = None) -> Iterator[RunInfo]:
        return iterate(lambda offset: self.list_runs(status, offset=offset))

    def get_run(self, run_id: int) -> RunInfo:
        return RunInfo.model_validate(self._http.call("GET", f"/runs/{run_id}"))

    def finish_run(self, run_id: int, status: str | None = None) -> Analysis:
        """End a run by id (succeeded, or "failed") and return its analysis. Idempotent."""
        body = {"status": status} if status else None
        answer = self._http.call("POST", f"/runs/{run_id}/finish", json=body, idempotent=True)
        return Analysis.model_validate(answer)
