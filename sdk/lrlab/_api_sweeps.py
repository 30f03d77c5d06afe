"""Sweep and job methods of the Client."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lrlab._http import Http
from lrlab._pages import iterate, page_params
from lrlab.errors import LrlabError
from lrlab.models import Page, Sweep, SweepAnalysis, Trial
from lrlab.specs import SpecFormat, SweepRequest, document_request, file_request


class WaitTimeout(LrlabError, TimeoutError):
    """wait() gave up before the sweep ended; `sweep` is its last state."""

    def __init__(self, message: str, sweep: Sweep) -> None:
        super().__init__(message)
        self.sweep = sweep


class SweepsApi:
    _http: Http

    def create_sweep(self, spec: Mapping[str, Any], format: SpecFormat = "auto") -> Sweep:
        """Submit a sweep from a dict: a native spec, or a W&B sweep configuration
        (`format="wandb"`, or "auto": the server tells them apart by their keys). Not
        retried once it may have reached the server: a sweep is not idempotent. The
        returned sweep's `warnings` say what the server found likely unintended."""
        return self._submit(document_request(dict(spec), format))

    def submit(self, path: str | Path, format: SpecFormat = "auto") -> Sweep:
        """Submit the sweep in a YAML or JSON file, native or W&B (see `create_sweep`)."""
        return self._submit(file_request(path, format))

    def _submit(self, request: SweepRequest) -> Sweep:
        body = self._http.call(
            "POST",
            "/sweeps",
            content=request.content,
            headers=request.headers,
            params=request.params,
        )
        return Sweep.model_validate(body)

    def create_job(self, spec: Mapping[str, Any]) -> Sweep:
        """Submit one training job (a trial spec); it is stored as a sweep of one trial."""
        return Sweep.model_validate(self._http.call("POST", "/jobs", json=dict(spec)))

    def list_sweeps(
        self, status: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> Page[Sweep]:
        """One page of the project's sweeps."""
        body = self._http.call("GET", "/sweeps", params=page_params(status, limit, offset))
        return Page[Sweep].model_validate(body)

    def iter_sweeps(self, status: str | None = None) -> Iterator[Sweep]:
        """Every sweep of the project, page after page."""
        return iterate(lambda offset: self.list_sweeps(status, offset=offset))

    def get_sweep(self, sweep_id: int) -> Sweep:
        return Sweep.model_validate(self._http.call("GET", f"/sweeps/{sweep_id}"))

    def cancel_sweep(self, sweep_id: int) -> Sweep:
        """Queued trials are cancelled at once, running ones asked to stop. Idempotent."""
        body = self._http.call("POST", f"/sweeps/{sweep_id}/cancel", idempotent=True)
        return Sweep.model_validate(body)

    def wait_sweep(
        self, sweep_id: int, *, timeout: float | None = None, poll: float = 2.0
    ) -> Sweep:
        """Block until the sweep has ended (finished, cancelled, or failed: its trials kept
        failing, `status_reason` says how); WaitTimeout after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = min(0.25, poll)
        while True:
            sweep = self.get_sweep(sweep_id)
            if sweep.is_terminal:
                return sweep
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(
                    f"sweep {sweep_id} is still {sweep.status} after {timeout} s", sweep
                )
            time.sleep(interval if left is None else min(interval, left))
            interval = min(poll, interval * 2)

    def list_trials(
        self,
        sweep_id: int,
        status: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> Page[Trial]:
        params = page_params(status, limit, offset)
        body = self._http.call("GET", f"/sweeps/{sweep_id}/trials", params=params)
        return Page[Trial].model_validate(body)

    def trials(self, sweep_id: int, status: str | None = None) -> list[Trial]:
        """Every trial of the sweep (all pages), by number."""
        return list(iterate(lambda offset: self.list_trials(sweep_id, status, offset=offset)))

    def sweep_analysis(self, sweep_id: int) -> SweepAnalysis:
        """Best trial and config, lr sensitivity, stable lr range, findings by kind, and
        what to do next."""
        body = self._http.call("GET", f"/sweeps/{sweep_id}/analysis")
        return SweepAnalysis.model_validate({"sweep_id": sweep_id, **body})
