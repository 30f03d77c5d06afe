"""Learning-rate helpers of the Client: the LR range test and recommendations."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lrlab._http import Http
from lrlab.errors import NotFound
from lrlab.models import LrFind, Recommendation


class NotAvailable(NotFound):
    """This server does not offer the capability (an older server: the route is missing)."""


def _route_missing(exc: NotFound, what: str) -> NotAvailable:
    return NotAvailable(
        f"{what} is not available on this server (upgrade it): {exc.message}",
        status_code=exc.status_code,
        details=exc.details,
    )


class LrApi:
    _http: Http

    def lr_find(self, base: Mapping[str, Any], **options: Any) -> LrFind:
        """Start an LR range test on `base` (a trial spec: task, model, optimizer, batch
        size...); `options`: min_lr, max_lr, steps, smoothing, loss_above_best, name."""
        try:
            body = self._http.call("POST", "/lr-find", json={"base": dict(base), **options})
        except NotFound as exc:
            raise _route_missing(exc, "the LR range test (POST /lr-find)") from exc
        return LrFind.model_validate(body)

    def get_lr_find(self, sweep_id: int, *, max_points: int = 500) -> LrFind:
        """A range test's curve and suggestions so far."""
        params = {"max_points": max_points}
        return LrFind.model_validate(self._http.call("GET", f"/lr-find/{sweep_id}", params=params))

    def wait_lr_find(
        self, sweep_id: int, *, timeout: float | None = None, poll: float = 1.0
    ) -> LrFind:
        """Block until the range test has ended; TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = self.get_lr_find(sweep_id)
            if found.is_terminal:
                return found
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"range test {sweep_id} is still {found.status}")
            time.sleep(poll)

    def recommend(
        self,
        task: str,
        optimizer: str,
        *,
        model: str | None = None,
        batch_size: int | str = 32,
        schedule: str = "constant",
        rule: str = "auto",
        momentum: float | None = None,
        nesterov: bool | None = None,
        betas: tuple[float, float] | None = None,
        max_steps: int | None = None,
        epochs: int | None = None,
    ) -> Recommendation:
        """A suggested lr and range for (task, model, optimizer and its momentum, nesterov
        or betas, batch_size, schedule, budget), learned from this project's finished
        trials; says so when there is too little, and lists what it widened (`widened`)."""
        params: dict[str, Any] = {
            "task": task,
            "optimizer": optimizer,
            "batch_size": str(batch_size),
            "schedule": schedule,
            "rule": rule,
        }
        optional: dict[str, Any] = {
            "model": model,
            "momentum": momentum,
            "nesterov": None if nesterov is None else str(nesterov).lower(),
            "betas": None if betas is None else ",".join(str(b) for b in betas),
            "max_steps": max_steps,
            "epochs": epochs,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        try:
            body = self._http.call("GET", "/recommendations", params=params)
        except NotFound as exc:
            raise _route_missing(exc, "recommendations (GET /recommendations)") from exc
        return Recommendation.model_validate(body)
