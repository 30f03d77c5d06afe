"""The live analyzer: diagnoses trials while they train, keeps their findings and cached
analysis current, and applies their sweep's stop policy.

It runs on a cadence, not per point: every `analyze_interval` seconds it re-analyses the
running trials that logged enough new steps (or any, after `analyze_max_wait`), reading a
bounded number of points per series, then gives each trial that ended its final,
non-provisional analysis. A stop (divergence by default, confirmed overfitting when the
sweep opts in) sets the trial's cancel flag with the finding as its reason; the worker
stops on its next heartbeat and the scheduler records the trial as pruned. External runs
are analysed the same way but never stopped: no worker runs them.

With no trial running and none left to finalize, its loop (services.background) backs
off; a started or ended trial, or a new run, wakes it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.analysis.stop_policy import decide_stop
from services.analysis.trial_analysis import diagnose_trial, metric_names, record
from services.analyzer import ANALYZER_VERSION, Diagnosis
from services.background import BackgroundLoop
from services.domain.finding_records import FindingChanges
from services.domain.kinds import TrialKind
from services.domain.records import Trial
from services.domain.stored_specs import StoredSpecError
from services.settings import Settings
from services.specs.sweep import Policy
from services.store import Store
from services.store.analysis_queue_repo import AnalysisQueue

log = logging.getLogger("lrlab.analyzer")

# Re-analyse a long run after a 50th more of its steps at the least: the cost of a pass
# grows with the run, what a few more steps can change does not.
GROWTH_DIVISOR = 50


@dataclass(frozen=True)
class PassResult:
    """What one tick did."""

    analyzed: int = 0  # provisional analyses of running trials
    finalized: int = 0  # final analyses of ended trials
    stopped: int = 0  # stops asked for by a policy
    failed: int = 0  # analyses that raised (logged; tried again once the trial changes)


class LiveAnalyzer:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_stop: Callable[[], None] | None = None,
        on_analysed: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`on_stop` is called after a stop was asked for (the scheduler's wake-up),
        `on_analysed` after a pass that recorded analyses (their findings may be news for
        the notifier)."""
        self._store = store
        self._queue = AnalysisQueue(store.db)
        self._settings = settings
        self._on_stop = on_stop or (lambda: None)
        self._on_analysed = on_analysed or (lambda: None)
        self._clock = clock
        self._seen: dict[int, float] = {}  # running trial -> clock of its last analysis
        # Analyses that raised, not retried until the trial changes: running trials by the
        # step it failed at, ended ones for good (their series will not change).
        self._failed: dict[int, int] = {}
        self._broken: set[int] = set()
        self._running = 0  # trials running at the last pass: news may come at any time
        self._tick_lock = threading.Lock()
        self._loop = BackgroundLoop("analyzer", self._loop_tick)

    # -- one pass ----------------------------------------------------------------------
    def tick(self) -> PassResult:
        result = self._locked_tick()
        if result.analyzed or result.finalized:
            self._on_analysed()
        return result

    def _locked_tick(self) -> PassResult:
        with self._tick_lock:
            counts: Counter[str] = Counter()
            policies: dict[int, Policy] = {}
            batch = self._due_running()[: self._settings.analyze_batch]
            for trial in batch:
                diagnosis, changes = self._analyze(trial, counts)
                if (
                    diagnosis is not None
                    and changes is not None
                    and trial.kind == TrialKind.TRAINED
                ):
                    self._apply_policy(trial, diagnosis, changes, policies, counts)
            room = self._settings.analyze_batch - len(batch)
            if room > 0:
                for trial in self._queue.ended(room, ANALYZER_VERSION, skip=self._broken):
                    self._analyze(trial, counts)
            return PassResult(**counts)

    def _due_running(self) -> list[Trial]:
        """Running trials with enough news, the longest-waiting first."""
        now, min_steps = self._clock(), self._settings.analyze_min_new_steps
        due: list[Trial] = []
        running = self._queue.running()
        self._running = len(running)
        for trial in running:
            if trial.kind == TrialKind.EXTERNAL:  # any name its analysis may read counts
                step = self._queue.logged_step(trial.id, metric_names(trial).candidates)
                trial = dataclasses.replace(trial, last_step=step)
            if trial.last_step is None or self._failed.get(trial.id, -1) == trial.last_step:
                continue
            seen = trial.analyzed_step
            news = trial.last_step - (-1 if seen is None else seen)
            if news <= 0:
                continue
            last = self._seen.get(trial.id)
            enough = news >= max(min_steps, (seen or 0) // GROWTH_DIVISOR)
            waited = last is not None and now - last >= self._settings.analyze_max_wait
            if enough or waited:
                due.append(trial)
            elif last is None:
                self._seen[trial.id] = now  # the wait starts from the first sight
        alive = {t.id for t in running}
        self._seen = {k: v for k, v in self._seen.items() if k in alive}
        due.sort(key=lambda t: self._seen.get(t.id, float("-inf")))
        return due

    def _analyze(
        self, trial: Trial, counts: Counter[str]
    ) -> tuple[Diagnosis | None, FindingChanges | None]:
        final = trial.status.is_terminal
        s = self._settings
        limit = s.max_series_points if final else s.analyze_max_points
        try:
            diagnosis = diagnose_trial(self._store, trial, limit)
            changes = record(self._store, trial, diagnosis)
        except Exception:  # one bad trial must not stall the others
            log.exception("analysing trial %s at step %s failed", trial.id, trial.last_step)
            if final or trial.last_step is None:
                self._broken.add(trial.id)
            else:
                self._failed[trial.id] = trial.last_step
            counts["failed"] += 1
            return None, None
        self._failed.pop(trial.id, None)
        self._seen[trial.id] = self._clock()
        counts["finalized" if final else "analyzed"] += 1
        return diagnosis, changes

    def _apply_policy(
        self,
        trial: Trial,
        diagnosis: Diagnosis,
        changes: FindingChanges,
        policies: dict[int, Policy],
        counts: Counter[str],
    ) -> None:
        if trial.sweep_id not in policies:
            policies[trial.sweep_id] = self._policy(trial)
        stop = decide_stop(policies[trial.sweep_id], diagnosis, changes.previously_active)
        if stop is None:
            return
        if self._store.trial_states.request_stop(trial.id, trial.attempt, stop.reason):
            log.info("trial %s: stopping (%s)", trial.id, stop.reason)
            counts["stopped"] += 1
            self._on_stop()

    def _policy(self, trial: Trial) -> Policy:
        sweep = self._store.sweeps.get(trial.project_id, trial.sweep_id)
        try:
            return sweep.policy
        except StoredSpecError as exc:  # a broken sweep keeps its trials under the defaults
            log.error("%s; its trials are stopped by the default policy", exc)
            return Policy()

    # -- background loop ---------------------------------------------------------------
    def start(self) -> None:
        """Tick every analyze_interval seconds (or at once after wake()) in a daemon thread;
        with no trial running and nothing to do, less and less often, up to
        idle_interval_max_seconds."""
        s = self._settings
        self._loop.start(s.analyze_interval, s.idle_interval_max_seconds)

    def wake(self) -> None:
        self._loop.wake()

    def stop(self, timeout: float | None = None) -> None:
        self._loop.stop(timeout)

    def _loop_tick(self) -> bool:
        return self.tick() != PassResult() or self._running > 0
