"""A background loop: one daemon thread that calls a tick, at once when woken, else after a
wait that grows while the ticks find nothing to do.

The scheduler, the live analyzer, the notifier and the housekeeping each own one. A tick
says whether it did (or has in flight) work: after such a tick the loop waits `interval`;
each wait that runs out after an idle tick doubles the next one, up to `idle_interval`,
so a server with nothing to do sleeps instead of polling. wake() (new work was stored)
ends the wait at once and brings the interval back. A tick that raises is logged and
counts as idle: the store or the cluster may come back, and the loop keeps going.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("lrlab.background")

# The wait itself, replaceable in tests: wait(event, timeout) -> whether the event was set.
Wait = Callable[[threading.Event, float], bool]


def _event_wait(event: threading.Event, timeout: float) -> bool:
    return event.wait(timeout)


class BackgroundLoop:
    def __init__(self, name: str, tick: Callable[[], bool], *, wait: Wait = _event_wait) -> None:
        """`tick` returns whether it did work; `name` is the thread's and the logs'."""
        self.name = name
        self._tick = tick
        self._wait = wait
        self._interval = self._idle_interval = 1.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive (a stop() that timed out leaves it running)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float, idle_interval: float | None = None) -> None:
        """Tick now, then after `interval` seconds, or up to `idle_interval` (default:
        `interval`, no back-off) while the ticks find nothing to do."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._interval = interval
        self._idle_interval = max(interval, idle_interval or interval)
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name=f"lrlab-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tick now, and go back to the short interval."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the tick in progress, if any; the wait ends at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():  # else a tick is still stuck: no second loop
                self._thread = None

    def _run(self) -> None:
        delay = self._interval
        while not self._stop.is_set():
            if self._safe_tick():
                delay = self._interval
            woken = self._wait(self._wake, delay)
            self._wake.clear()  # before the tick: a wake-up during it ends the next wait
            delay = self._interval if woken else min(2 * delay, self._idle_interval)

    def _safe_tick(self) -> bool:
        try:
            return bool(self._tick())
        except Exception:
            log.exception("%s: tick failed", self.name)
            return False
