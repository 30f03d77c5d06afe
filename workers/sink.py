"""Batched metric writes from a training loop.

Points arrive in blocks: the per-step metrics of a run of consecutive steps as columns
(`add_steps`), or one point (`add`, for evaluations). Adding is a locked list append, so
the training step never waits on the database; a background thread turns blocks into rows
and writes them by count or by age, whichever comes first. An attempt's first points are
written as soon as they arrive, so a new trial's curve shows up at once.

`unsent()` is every block not yet known to be stored (queued or being written): the runner
puts it into each checkpoint and re-sends it on resume (writes are idempotent), so a
checkpoint never waits for the database and a resumed series still has no gap. `flush`
blocks until everything added so far is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

log = logging.getLogger("lrlab.worker.sink")

Row = tuple[str, int, float, float | None]
Writer = Callable[[Sequence[Row]], object]
# (first step, {name: one value per step}, one time per step): consecutive steps from first.
Columns = dict[str, list[float]]
Block = tuple[int, Columns, list[float]]


class PointSink(Protocol):
    """The least a sink offers: points one at a time, and a flush that stores them."""

    def add(self, name: str, step: int, value: float) -> None: ...
    def flush(self) -> None: ...


@runtime_checkable
class BlockSink(PointSink, Protocol):
    """A sink that takes blocks of steps and can say which of them are not stored yet."""

    def add_steps(self, first_step: int, columns: Columns, times: list[float]) -> None: ...
    def unsent(self) -> list[Block]: ...


def block_sink(sink: PointSink) -> BlockSink:
    """`sink` itself when it takes blocks; else an adapter that adds their points one by one
    and flushes before it answers `unsent` (nothing is then left to carry in a checkpoint)."""
    return sink if isinstance(sink, BlockSink) else _PointwiseSink(sink)


class _PointwiseSink:
    def __init__(self, sink: PointSink) -> None:
        self._sink = sink

    def add(self, name: str, step: int, value: float) -> None:
        self._sink.add(name, step, value)

    def add_steps(self, first_step: int, columns: Columns, times: list[float]) -> None:
        for name, values in columns.items():
            for i, value in enumerate(values):
                self._sink.add(name, first_step + i, value)

    def flush(self) -> None:
        self._sink.flush()

    def unsent(self) -> list[Block]:
        self._sink.flush()
        return []


def rows_of(blocks: Sequence[Block]) -> list[Row]:
    return [
        (name, first + i, value, at)
        for first, columns, times in blocks
        for name, values in columns.items()
        for i, (value, at) in enumerate(zip(values, times, strict=True))
    ]


def _points(block: Block) -> int:
    return len(block[2]) * len(block[1])


class MetricSink:
    def __init__(
        self,
        write: Writer,
        *,
        max_points: int = 5000,
        max_age_seconds: float = 1.0,
        retries: int = 5,
    ) -> None:
        self._write = write
        self._max_points = max_points
        self._max_age = max_age_seconds
        self._retries = retries
        self._buffer: list[Block] = []
        self._buffered = 0  # points in _buffer
        self._in_flight: list[Block] = []  # taken by the writer, not stored yet
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flushed = threading.Condition(self._lock)
        self._added = 0  # points taken by the writer so far
        self._stored = 0  # points durably written so far
        self._first = True  # nothing written yet: write the first points at once
        self._flushing = 0  # callers waiting in flush()
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="lrlab-metric-sink", daemon=True)
        self._thread.start()

    def add(self, name: str, step: int, value: float) -> None:
        self._append((step, {name: [value]}, [time.time()]))

    def add_steps(self, first_step: int, columns: Columns, times: list[float]) -> None:
        """Points for steps first_step, first_step + 1, ...: one value per step in each
        column, recorded at `times`. The lists are the sink's from here on."""
        self._append((first_step, columns, times))

    def _append(self, block: Block) -> None:
        with self._lock:  # uncontended but for the writer's swap of the buffer
            self._buffer.append(block)
            self._buffered += _points(block)
            if self._first or self._buffered >= self._max_points:
                self._wake.notify()

    def unsent(self) -> list[Block]:
        """Every block added but not known to be stored, oldest first."""
        with self._lock:
            return self._in_flight + self._buffer

    def flush(self) -> None:
        """Block until every point added so far is stored; raises if writing failed."""
        with self._lock:
            target = self._added + self._buffered
            self._flushing += 1  # the writer writes without waiting while this is > 0
            try:
                self._wake.notify()
                while self._stored < target and self._error is None:
                    self._flushed.wait()
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise RuntimeError("metric writes failed") from self._error

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join()

    def _take(self) -> list[Block]:
        batch, self._buffer = self._buffer, []
        self._in_flight = batch
        self._added += self._buffered
        self._buffered = 0
        return batch

    def _due(self) -> bool:
        """Whether to write now rather than wait for the batch's age."""
        return (
            self._closing
            or self._flushing > 0
            or self._buffered >= self._max_points
            or (self._first and bool(self._buffer))  # the first points: at once
        )

    def _run(self) -> None:
        while True:
            with self._lock:
                # The very first wait has no age limit: nothing is there to age.
                deadline = None if self._first else time.monotonic() + self._max_age
                while not self._due():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._wake.wait(timeout=left)
                if self._closing and not self._buffer:
                    return
                batch = self._take()
            if batch:
                self._store(batch)

    def _store(self, batch: list[Block]) -> None:
        rows = rows_of(batch)
        delay = 0.1
        for attempt in range(self._retries + 1):
            try:
                self._write(rows)
                break
            except Exception as exc:  # retried: writes are idempotent
                if attempt == self._retries:
                    log.error("giving up on %d metric points: %s", len(rows), exc)
                    with self._lock:
                        self._error = exc
                        self._flushed.notify_all()
                    return
                log.warning("metric write failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)  # backoff between retries of a failed write
                delay = min(delay * 2, 5.0)
        with self._lock:
            self._stored += len(rows)
            self._in_flight = []
            self._first = False
            self._flushed.notify_all()
