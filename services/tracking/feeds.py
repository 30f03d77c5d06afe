"""Live feeds of a sweep or a trial: what changed since a cursor, as stream events.

A Feed is polled (by the SSE route, on a short interval) and answers with the events that
happened since its cursor, each carrying the cursor just after it, so a client that
reconnects with the last id it saw gets the rest with no gap and no repeat:

- `trial`: a trial's status changed (its new status, attempt, stop reason, error);
- `metrics`: new points of one trial, every series it logs;
- `finding`: a finding was added, changed or deactivated (FindingRepository order);
- `end`: the sweep (or trial) is over and everything about it was sent.

Points are sent step by step per trial. Until a trial ends, its highest step is held back
(a batch that splits one step's points between two writes loses none); an ended trial is
drained to its last point, then its final status is sent. Each poll reads a bounded
number of points; a backlog (a client catching up) takes several polls, and `max_points`
downsamples each series of an event for clients that want the shape, not every point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.domain.downsample import downsample_indices
from services.domain.records import Series, TrialStatus
from services.domain.trial_life import TrialProgress
from services.store import Store
from services.tracking.feed_cursor import StreamCursor, TrialMark

FINDINGS_PER_POLL = 200
MIN_POINTS_PER_SERIES = 16  # per poll, however small the budget left: progress is certain


@dataclass(frozen=True)
class StreamEvent:
    type: str  # trial | metrics | finding | end
    data: dict[str, Any]
    id: str  # the cursor after this event


@dataclass(frozen=True)
class Poll:
    events: list[StreamEvent]
    more: bool  # a backlog is left: poll again without waiting
    ended: bool  # the last event is `end`


@dataclass(frozen=True)
class FeedLimits:
    series_points: int = 5_000  # points read per series per poll
    poll_points: int = 20_000  # points read per poll, all trials together
    max_points: int | None = None  # downsample each series of an event to this many


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _trial_data(t: TrialProgress) -> dict[str, Any]:
    return {
        "trial_id": t.id,
        "number": t.number,
        "status": t.status.value,
        "attempt": t.attempt,
        "last_step": t.last_step,
        "stop_reason": t.stop_reason,
        "error": t.error,
    }


class Feed:
    """The events of one sweep (`sweep_id`) or one trial (`trial_id`) of a project, after
    `cursor`. Look the sweep or trial up in the project before making one."""

    def __init__(
        self,
        store: Store,
        project_id: int,
        *,
        sweep_id: int | None = None,
        trial_id: int | None = None,
        cursor: StreamCursor | None = None,
        limits: FeedLimits | None = None,
    ) -> None:
        if (sweep_id is None) == (trial_id is None):
            raise ValueError("a feed follows one sweep or one trial")
        self._store = store
        self._project_id = project_id
        self._sweep_id = sweep_id
        self._trial_id = trial_id
        self.cursor = cursor or StreamCursor()
        self._limits = limits or FeedLimits()
        self._events: list[StreamEvent] = []
        self._progress()  # NotFound now, before a stream starts, unless it is the project's

    def poll(self) -> Poll:
        self._events = []
        # Read before the trials: a sweep seen over has no trial left to start.
        sweep_over = self._sweep_id is None or self._sweep_over()
        trials = self._progress()
        budget = self._limits.poll_points
        more = False
        for t in trials:
            if t.id in self.cursor.done:
                continue
            unseen = t.id not in self.cursor.trials
            if unseen and t.status is TrialStatus.QUEUED and t.attempt == 0:
                continue  # never started: nothing to say yet
            if budget <= 0:
                more = True
                break
            read, backlog = self._follow(t, budget)
            budget -= read
            more = more or backlog
        more = self._findings() or more
        settled = all(t.id in self.cursor.done for t in trials)
        ended = sweep_over and settled and not more
        if ended:
            self._emit("end", self._end_data(trials))
        return Poll(self._events, more, ended)

    # -- the parts of a poll ----------------------------------------------------------------
    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self._events.append(StreamEvent(kind, data, self.cursor.encode()))

    def _sweep_over(self) -> bool:
        assert self._sweep_id is not None
        return self._store.sweeps.get(self._project_id, self._sweep_id).status.is_terminal

    def _progress(self) -> list[TrialProgress]:
        if self._sweep_id is not None:
            return self._store.progress.of_sweep(self._project_id, self._sweep_id)
        assert self._trial_id is not None
        return self._store.progress.of_trial(self._project_id, self._trial_id)

    def _follow(self, t: TrialProgress, budget: int) -> tuple[int, bool]:
        """Send what is new about one trial: (points read, whether some were left unread)."""
        mark = self.cursor.mark(t.id)
        ending = t.status.is_terminal
        if not ending and t.status is not mark.status:
            mark.status = t.status
            self._emit("trial", _trial_data(t))
        read, backlog = self._points(t.id, mark, ending, budget)
        if ending and not backlog:
            mark.status = t.status
            self.cursor.finish(t.id)
            self._emit("trial", _trial_data(t))
        return read, backlog

    def _points(
        self, trial_id: int, mark: TrialMark, ending: bool, budget: int
    ) -> tuple[int, bool]:
        """Send the trial's points after mark.step: (points read, whether a series was
        cut short by the read limit)."""
        cut = math.inf
        if not ending:
            # The writer may be mid-batch, and each series is read in its own snapshot: only
            # the steps below the highest one seen *before* the reads are surely complete.
            logged = self._store.metrics.names(self._project_id, trial_id)
            top = self._store.progress.top_step(self._project_id, trial_id, logged)
            if top is None or top <= mark.step + 1:
                return 0, False
            cut = top - 1
        names = self._store.metrics.names(self._project_id, trial_id)  # after the probe
        if not names:
            return 0, False
        share = min(self._limits.series_points, budget // len(names))
        limit = max(MIN_POINTS_PER_SERIES, share)
        end = None if cut == math.inf else int(cut)
        series = self._store.metrics.read(
            self._project_id, trial_id, names, start=mark.step + 1, end=end, limit=limit
        )
        backlog = False
        for s in series:
            if s.next_start is not None:  # cut short: complete only up to its last step
                cut = min(cut, s.steps[-1])
                backlog = True
        read = sum(len(s.steps) for s in series)
        points, total, last = self._selected(series, cut)
        if points:
            mark.step = last
            data: dict[str, Any] = {"trial_id": trial_id, "points": points}
            if total > len(points):
                data.update(downsampled=True, total=total)
            self._emit("metrics", data)
        return read, backlog

    def _selected(self, series: list[Series], cut: float) -> tuple[list[dict[str, Any]], int, int]:
        """The points at or below `cut` (downsampled per series when asked): the points,
        how many there were before downsampling, and the highest step among them."""
        points: list[dict[str, Any]] = []
        total, last = 0, -1
        for s in series:
            n = int(np.searchsorted(np.asarray(s.steps, dtype=np.int64), cut, side="right"))
            if n == 0:
                continue
            total += n
            last = max(last, s.steps[n - 1])
            keep: list[int] = list(range(n))
            max_points = self._limits.max_points
            if max_points is not None and n > max_points:
                values = np.asarray(s.values[:n], dtype=np.float64)
                keep = downsample_indices(values, max_points).tolist()
            points.extend(
                {
                    "name": s.name,
                    "step": s.steps[i],
                    "value": _json_number(s.values[i]),
                    "time": s.times[i],
                }
                for i in keep
            )
        return points, total, last

    def _findings(self) -> bool:
        """Send the findings changed since the cursor; whether more are waiting."""
        changed = self._store.findings.changed_since(
            self._project_id,
            self.cursor.findings,
            sweep_id=self._sweep_id,
            trial_id=self._trial_id,
            limit=FINDINGS_PER_POLL,
        )
        for finding in changed:
            self.cursor.findings = finding.cursor
            self._emit("finding", finding.to_dict())
        return len(changed) >= FINDINGS_PER_POLL

    def _end_data(self, trials: list[TrialProgress]) -> dict[str, Any]:
        if self._sweep_id is not None:
            sweep = self._store.sweeps.get(self._project_id, self._sweep_id)
            return {"sweep_id": sweep.id, "status": sweep.status.value}
        return {"trial_id": trials[0].id, "status": trials[0].status.value}
