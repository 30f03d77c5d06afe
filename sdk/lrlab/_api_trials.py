"""Trial methods of the Client: state, metrics in and out, analysis, live streams."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lrlab._http import Http
from lrlab._pages import iterate
from lrlab.metrics import read_series, require_pandas, to_frame
from lrlab.models import Analysis, Finding, IngestResult, Page, Series, Trial, TrialEvent
from lrlab.streaming import EventStream

if TYPE_CHECKING:
    import pandas as pd

_JSON = {"Content-Type": "application/json"}


def _wire_value(value: float) -> float | str:
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _wire_point(point: Mapping[str, Any]) -> dict[str, Any]:
    out = {"name": point["name"], "step": point["step"], "value": _wire_value(point["value"])}
    if point.get("time") is not None:
        out["time"] = point["time"]
    return out


def _finding_query(
    min_severity: str | None, kinds: Sequence[str], include_inactive: bool
) -> list[tuple[str, Any]]:
    query: list[tuple[str, Any]] = [("kind", k) for k in kinds]
    if min_severity is not None:
        query.append(("min_severity", min_severity))
    if include_inactive:
        query.append(("include_inactive", "true"))
    return query


class TrialsApi:
    _http: Http

    def get_trial(self, trial_id: int) -> Trial:
        return Trial.model_validate(self._http.call("GET", f"/trials/{trial_id}"))

    def cancel_trial(self, trial_id: int) -> Trial:
        body = self._http.call("POST", f"/trials/{trial_id}/cancel", idempotent=True)
        return Trial.model_validate(body)

    def trial_events(self, trial_id: int) -> list[TrialEvent]:
        """Every status change of the trial, oldest first."""
        body = self._http.call("GET", f"/trials/{trial_id}/events")
        return [TrialEvent.model_validate(e) for e in body]

    def metric_names(self, trial_id: int) -> list[str]:
        return list(self._http.call("GET", f"/trials/{trial_id}/metric-names"))

    def metrics(
        self,
        trial_id: int,
        names: Sequence[str] | None = None,
        *,
        start: int | None = None,
        end: int | None = None,
        max_points: int | None = None,
        page_size: int | None = None,
    ) -> list[Series]:
        """Series of the trial (all names if none given). `max_points`: downsampled by
        the server; otherwise every point in [start, end], read page after page."""
        return read_series(
            self._http,
            trial_id,
            names,
            start=start,
            end=end,
            max_points=max_points,
            page_size=page_size,
        )

    def metrics_frame(
        self,
        trial_id: int,
        names: Sequence[str] | None = None,
        *,
        wide: bool = True,
        start: int | None = None,
        end: int | None = None,
        max_points: int | None = None,
    ) -> pd.DataFrame:
        """The series as a pandas DataFrame: wide (index step, a column per metric) or
        long (trial_id, name, step, value, time). Needs the `pandas` extra."""
        require_pandas()
        series = self.metrics(trial_id, names, start=start, end=end, max_points=max_points)
        return to_frame(series, wide=wide, trial_id=None if wide else trial_id)

    def log_metrics(self, trial_id: int, points: Iterable[Mapping[str, Any]]) -> int:
        """Store points ({name, step, value[, time]}) now, in one request; returns how many
        distinct (name, step) points the server took. Idempotent, so retried safely.
        For logging from a training loop, `start_run(...).log` is the non-blocking way."""
        body = json.dumps({"points": [_wire_point(p) for p in points]}, allow_nan=False)
        answer = self._http.call(
            "POST",
            f"/trials/{trial_id}/metrics",
            content=body.encode(),
            headers=_JSON,
            idempotent=True,
        )
        return IngestResult.model_validate(answer).accepted

    def trial_analysis(self, trial_id: int) -> Analysis:
        """What went wrong with the learning rate and what to change (provisional while
        the trial runs)."""
        return Analysis.model_validate(self._http.call("GET", f"/trials/{trial_id}/analysis"))

    def trial_findings(
        self,
        trial_id: int,
        *,
        min_severity: str | None = None,
        kinds: Sequence[str] = (),
        include_inactive: bool = False,
    ) -> list[Finding]:
        """The trial's stored findings (kept current by the live analyzer), most severe
        first; `min_severity` info|warning|critical, `kinds` to choose."""
        query = _finding_query(min_severity, kinds, include_inactive)
        return self._findings(f"/trials/{trial_id}/findings", query)

    def sweep_findings(
        self,
        sweep_id: int,
        *,
        min_severity: str | None = None,
        kinds: Sequence[str] = (),
        include_inactive: bool = False,
    ) -> list[Finding]:
        """The stored findings of every trial of the sweep, most severe first."""
        query = _finding_query(min_severity, kinds, include_inactive)
        return self._findings(f"/sweeps/{sweep_id}/findings", query)

    def _findings(self, path: str, query: list[tuple[str, Any]]) -> list[Finding]:
        def page(offset: int) -> Page[Finding]:
            body = self._http.call("GET", path, params=[*query, ("offset", offset)])
            return Page[Finding].model_validate(body)

        return list(iterate(page))

    def stream_trial(
        self, trial_id: int, *, last_event_id: str | None = None, max_reconnects: int = 10
    ) -> EventStream:
        """Live events of one trial; iterate it. Resumes after `last_event_id` if given."""
        return EventStream(self._http, f"/trials/{trial_id}/stream", last_event_id, max_reconnects)

    def stream_sweep(
        self, sweep_id: int, *, last_event_id: str | None = None, max_reconnects: int = 10
    ) -> EventStream:
        """Live events of every trial of a sweep, until it ends."""
        return EventStream(self._http, f"/sweeps/{sweep_id}/stream", last_event_id, max_reconnects)
