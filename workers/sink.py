"""Batched metric writes from a training loop.

`add` is a locked list append, so the training step never waits on the database; a background
thread writes batches by count or by age (whichever comes first), and `flush` blocks until
everything added so far is stored (the runner flushes before each checkpoint, so a resumed
trial never has a gap below its checkpoint).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("lrlab.worker.sink")

Row = tuple[str, int, float, float | None]
Writer = Callable[[Sequence[Row]], object]


class MetricSink:
    def __init__(
        self,
        write: Writer,
        *,
        max_points: int = 1000,
        max_age_seconds: float = 0.5,
        retries: int = 5,
    ) -> None:
        self._write = write
        self._max_points = max_points
        self._max_age = max_age_seconds
        self._retries = retries
        self._buffer: list[Row] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flushed = threading.Condition(self._lock)
        self._added = 0  # points handed to add() so far
        self._stored = 0  # points durably written so far
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="lrlab-metric-sink", daemon=True)
        self._thread.start()

    def add(self, name: str, step: int, value: float) -> None:
        with self._lock:  # ~0.1 us uncontended; the writer swaps the buffer under it
            self._buffer.append((name, step, value, time.time()))
            if len(self._buffer) >= self._max_points:
                self._wake.notify()

    def flush(self) -> None:
        """Block until every point added so far is stored; raises if writing failed."""
        with self._lock:
            target = self._added + len(self._buffer)
            self._wake.notify()
            while self._stored < target and self._error is None:
                self._flushed.wait()
            if self._error is not None:
                raise RuntimeError("metric writes failed") from self._error

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join()

    def _take(self) -> list[Row]:
        batch, self._buffer = self._buffer, []
        self._added += len(batch)
        return batch

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._buffer and not self._closing:
                    self._wake.wait(timeout=self._max_age)
                if self._closing and not self._buffer:
                    return
                batch = self._take()
            if batch:
                self._store(batch)

    def _store(self, batch: list[Row]) -> None:
        delay = 0.1
        for attempt in range(self._retries + 1):
            try:
                self._write(batch)
                break
            except Exception as exc:  # retried: writes are idempotent
                if attempt == self._retries:
                    log.error("giving up on %d metric points: %s", len(batch), exc)
                    with self._lock:
                        self._error = exc
                        self._flushed.notify_all()
                    return
                log.warning("metric write failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)  # backoff between retries of a failed write
                delay = min(delay * 2, 5.0)
        with self._lock:
            self._stored += len(batch)
            self._flushed.notify_all()
