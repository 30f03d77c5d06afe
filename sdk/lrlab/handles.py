"""`client.sweep(id)` and `client.trial(id)`: one object to hold on to, methods without
ids. Each call asks the server afresh."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lrlab.metrics import long_rows, require_pandas
from lrlab.models import Analysis, Finding, Series, Sweep, SweepAnalysis, Trial, TrialEvent
from lrlab.streaming import EventStream

if TYPE_CHECKING:
    import pandas as pd

    from lrlab.client import Client


class TrialHandle:
    def __init__(self, client: Client, trial_id: int) -> None:
        self.client = client
        self.id = trial_id

    def __repr__(self) -> str:
        return f"TrialHandle(id={self.id})"

    def get(self) -> Trial:
        return self.client.get_trial(self.id)

    def events(self) -> list[TrialEvent]:
        return self.client.trial_events(self.id)

    def cancel(self) -> Trial:
        return self.client.cancel_trial(self.id)

    def metric_names(self) -> list[str]:
        return self.client.metric_names(self.id)

    def metrics(self, names: Sequence[str] | None = None, **kwargs: Any) -> list[Series]:
        return self.client.metrics(self.id, names, **kwargs)

    def dataframe(self, names: Sequence[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        return self.client.metrics_frame(self.id, names, **kwargs)

    def analysis(self) -> Analysis:
        return self.client.trial_analysis(self.id)

    def findings(self, **filters: Any) -> list[Finding]:
        return self.client.trial_findings(self.id, **filters)

    def stream(self, last_event_id: str | None = None) -> EventStream:
        return self.client.stream_trial(self.id, last_event_id=last_event_id)


class SweepHandle:
    def __init__(self, client: Client, sweep_id: int) -> None:
        self.client = client
        self.id = sweep_id

    def __repr__(self) -> str:
        return f"SweepHandle(id={self.id})"

    def get(self) -> Sweep:
        return self.client.get_sweep(self.id)

    def trials(self, status: str | None = None) -> list[Trial]:
        return self.client.trials(self.id, status)

    def trial(self, trial_id: int) -> TrialHandle:
        return TrialHandle(self.client, trial_id)

    def cancel(self) -> Sweep:
        return self.client.cancel_sweep(self.id)

    def wait(self, timeout: float | None = None, poll: float = 2.0) -> Sweep:
        return self.client.wait_sweep(self.id, timeout=timeout, poll=poll)

    def analysis(self) -> SweepAnalysis:
        return self.client.sweep_analysis(self.id)

    def findings(self, **filters: Any) -> list[Finding]:
        return self.client.sweep_findings(self.id, **filters)

    def stream(self, last_event_id: str | None = None) -> EventStream:
        return self.client.stream_sweep(self.id, last_event_id=last_event_id)

    def dataframe(
        self, names: Sequence[str] | None = None, *, max_points: int | None = None
    ) -> pd.DataFrame:
        """Every trial's series in long form: trial_id, name, step, value, time."""
        pd = require_pandas()
        rows = []
        for trial in self.trials():
            series = self.client.metrics(trial.id, names, max_points=max_points)
            rows.extend(long_rows(series, trial.id))
        return pd.DataFrame(rows, columns=["trial_id", "name", "step", "value", "time"])
