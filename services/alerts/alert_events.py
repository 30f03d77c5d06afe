"""Which webhook events a sweep's notify setting asks for, and what they say.

A `finding` event goes out once per (trial, kind), when an active finding of at least the
sweep's `notify.min_severity` appears on one of its trials; a `sweep_end` event once per
sweep, when it finished or was cancelled and no trial of it still runs, with a summary
(trials by status, the best trial by the sweep's metric). Both land in the outbox under
their key, so scanning the same findings or sweeps twice sends nothing twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.analyzer.findings import SEVERITIES
from services.domain.errors import NotFound
from services.domain.finding_records import FindingCursor, StoredFinding
from services.domain.outbox import SWEEP_END
from services.domain.records import Sweep
from services.store import Store

_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
SCAN_LIMIT = 500  # findings and ended sweeps looked at per scan
SWEEP_CACHE = 10_000  # sweeps whose notify setting is remembered
# How far back a notifier that just started looks: findings and sweep ends older than this
# (say, from before webhooks were configured) are not announced out of the blue.
LOOKBACK = timedelta(hours=24)


def finding_key(trial_id: int, kind: str) -> str:
    return f"finding:{trial_id}:{kind}"


def sweep_end_key(sweep_id: int) -> str:
    return f"{SWEEP_END}{sweep_id}"


def _notify(sweep: Sweep) -> dict[str, Any] | None:
    notify = sweep.spec.get("notify")
    return notify if isinstance(notify, dict) and notify.get("url") else None


def _wants(notify: dict[str, Any] | None, event: str) -> bool:
    """Whether the notify setting asks for `event` (the spec's default: every event)."""
    return notify is not None and event in notify.get("events", ("finding", "sweep_end"))


def _sweep_ref(sweep: Sweep) -> dict[str, Any]:
    return {"id": sweep.id, "name": sweep.name, "project_id": sweep.project_id}


def finding_event(sweep: Sweep, trial_number: int, finding: StoredFinding) -> dict[str, Any]:
    return {
        "type": "finding",
        "key": finding_key(finding.trial_id, finding.kind),
        "sweep": _sweep_ref(sweep),
        "trial": {"id": finding.trial_id, "number": trial_number},
        "finding": finding.to_dict(),
    }


def _best(store: Store, sweep: Sweep) -> dict[str, Any] | None:
    """The trial whose last finite value of the sweep's metric is best, or None."""
    summaries = store.summaries.for_sweep(sweep.project_id, sweep.id, [sweep.metric_name])
    finite = [s for s in summaries.values() if math.isfinite(s.last_value)]
    if not finite:
        return None
    pick = min if sweep.metric_goal == "minimize" else max
    best = pick(finite, key=lambda s: s.last_value)
    trial = store.trials.get(sweep.project_id, best.trial_id)
    return {
        "trial_id": trial.id,
        "number": trial.number,
        "status": trial.status.value,
        "params": trial.params,
        "metric": sweep.metric_name,
        "value": best.last_value,
        "step": best.last_step,
    }


def sweep_end_event(store: Store, sweep: Sweep) -> dict[str, Any]:
    return {
        "type": "sweep_end",
        "key": sweep_end_key(sweep.id),
        "sweep": {
            **_sweep_ref(sweep),
            "status": sweep.status.value,
            # Why it ended by itself: its trials kept failing, or its metric target.
            "status_reason": sweep.status_reason,
            "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None,
            "metric": {"name": sweep.metric_name, "goal": sweep.metric_goal},
        },
        "summary": {
            "trials": dict(sorted(sweep.trial_counts.items())),
            "total": sum(sweep.trial_counts.values()),
            "best": _best(store, sweep),
        },
    }


@dataclass
class Scanner:
    """Finds the events due to be enqueued. Keeps, in memory, its place in the findings
    and which sweeps ask for nothing (a restart re-learns both, and enqueues are
    idempotent)."""

    store: Store
    started: datetime
    cursor: FindingCursor | None = None
    _sweeps: dict[int, Sweep | None] = field(default_factory=dict)  # None: no notify
    _quiet: set[int] = field(default_factory=set)  # ended sweeps that want no sweep_end

    def __post_init__(self) -> None:
        if self.cursor is None:
            self.cursor = FindingCursor(self.started - LOOKBACK, 0)

    def scan(self, now: datetime) -> int:
        """Enqueue what is new; the number of events added to the outbox."""
        return self._findings(now) + self._sweep_ends(now)

    def _sweep(self, project_id: int, sweep_id: int) -> Sweep | None:
        """The sweep if it asks for notifications (cached: a sweep's spec never changes)."""
        if sweep_id not in self._sweeps:
            if len(self._sweeps) > SWEEP_CACHE:
                self._sweeps.clear()
            try:
                sweep: Sweep | None = self.store.sweeps.get(project_id, sweep_id)
            except NotFound:  # deleted since
                sweep = None
            self._sweeps[sweep_id] = sweep if sweep and _notify(sweep) else None
        return self._sweeps[sweep_id]

    def _enqueue(self, sweep: Sweep, event: dict[str, Any], now: datetime) -> int:
        notify = _notify(sweep)
        assert notify is not None
        added = self.store.notifications.enqueue(
            project_id=sweep.project_id,
            sweep_id=sweep.id,
            key=event["key"],
            url=notify["url"],
            event=event,
            now=now,
        )
        return int(added)

    def _findings(self, now: datetime) -> int:
        changed = self.store.findings.changed_since(None, self.cursor, limit=SCAN_LIMIT)
        added = 0
        for finding in changed:
            self.cursor = finding.cursor
            if finding.sweep_id is None or not finding.active:
                continue
            sweep = self._sweep(finding.project_id, finding.sweep_id)
            notify = _notify(sweep) if sweep else None
            if sweep is None or notify is None or not _wants(notify, "finding"):
                continue
            if _RANK.get(finding.severity, -1) < _RANK[notify.get("min_severity", "warning")]:
                continue
            trial = self.store.trials.get(sweep.project_id, finding.trial_id)
            added += self._enqueue(sweep, finding_event(sweep, trial.number, finding), now)
        return added

    def _sweep_ends(self, now: datetime) -> int:
        added = 0
        since = self.started - LOOKBACK
        ended = self.store.notifications.ended_sweeps(since, SCAN_LIMIT, skip=self._quiet)
        for project_id, sweep_id in ended:
            sweep = self.store.sweeps.get(project_id, sweep_id)  # its final counts
            if _wants(_notify(sweep), "sweep_end"):
                added += self._enqueue(sweep, sweep_end_event(self.store, sweep), now)
            else:  # a webhook for findings only
                self._quiet.add(sweep_id)
        return added
