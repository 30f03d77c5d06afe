"""Housekeeping beside the scheduler: `lr: auto` sweeps get their lrs once their range test
has ended (services.sweeps.lr_auto), and external runs whose script went silent end failed
(services.tracking.external_runs). Neither launches or records an attempt, so neither is
the scheduler's.

It runs wherever the scheduler runs (`lrlab serve` without --no-scheduler), in a
background loop of its own (services.background): woken when a trial ends or a sweep is
submitted, else every `interval` seconds, backing off while there is nothing to settle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.background import BackgroundLoop
from services.store import Store
from services.sweeps.lr_auto import settle_waiting_sweeps
from services.tracking.external_runs import give_up_silent_runs, silence_reason

log = logging.getLogger("lrlab.housekeeping")

RUNS_CHECK_SECONDS = 10.0  # how often silent external runs are looked for


@dataclass(frozen=True)
class HousekeepingResult:
    """What one tick did."""

    sweeps_settled: int = 0  # lr: auto sweeps given their lrs by their range test
    runs_given_up: int = 0  # external runs failed for silence (their script died)


class Housekeeping:
    def __init__(
        self,
        store: Store,
        *,
        run_silence_seconds: float | None = None,
        on_settled: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`run_silence_seconds` None: external runs are never given up. `on_settled` is
        called after sweeps were settled (their trials are queued: the scheduler's wake-up)."""
        self._store = store
        self._run_silence = run_silence_seconds
        self._on_settled = on_settled or (lambda: None)
        self._clock = clock
        self._runs_checked_at: float | None = None
        self._tick_lock = threading.Lock()
        self._loop = BackgroundLoop("housekeeping", self._loop_tick)

    def tick(self) -> HousekeepingResult:
        with self._tick_lock:
            result = HousekeepingResult(
                sweeps_settled=len(settle_waiting_sweeps(self._store)),
                runs_given_up=self._give_up_silent_runs(),
            )
        if result.sweeps_settled:
            self._on_settled()
        return result

    def _give_up_silent_runs(self) -> int:
        """External runs whose script went silent end failed. Checked every
        RUNS_CHECK_SECONDS, not every tick: the silence allowed is minutes long."""
        if self._run_silence is None:
            return 0
        now = self._clock()
        if self._runs_checked_at is not None and now - self._runs_checked_at < RUNS_CHECK_SECONDS:
            return 0
        self._runs_checked_at = now
        given_up = give_up_silent_runs(self._store, self._run_silence)
        for run_id in given_up:
            log.warning("run %s: %s -> failed", run_id, silence_reason(self._run_silence))
        return len(given_up)

    # -- background loop ---------------------------------------------------------------
    def start(self, interval: float = 0.25, idle_interval: float | None = None) -> None:
        """Tick in a daemon thread: at once after wake(), else every `interval` seconds
        (the scheduler's), backing off to `idle_interval` while idle (default: never)."""
        self._loop.start(interval, idle_interval)

    def wake(self) -> None:
        """Tick now (a trial ended, a sweep was submitted)."""
        self._loop.wake()

    def stop(self, timeout: float | None = None) -> None:
        self._loop.stop(timeout)

    def _loop_tick(self) -> bool:
        return self.tick() != HousekeepingResult()
