"""Driving schedulers in tests: tick until a condition holds (bounded in ticks, not time),
several schedulers at once, and how many trials overlapped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from services.scheduling.scheduler import Scheduler


def tick_until(tick: Callable[[], object], done: Callable[[], bool], limit: int = 500) -> int:
    """Tick until done() holds; the number of ticks it took (bounded: no sleeps)."""
    for i in range(limit):
        if done():
            return i
        tick()
    raise AssertionError(f"condition not reached after {limit} ticks")


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    # At equal times an end sorts first (-1 < 1): a slot freed and retaken is no overlap.
    level = peak = 0
    for _, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def drive_together(
    schedulers: list[Scheduler], done: Callable[[], bool], ticks: int = 2000
) -> list[BaseException]:
    """Tick every scheduler in its own thread until done() holds (bounded in ticks);
    what the threads raised."""
    finished = threading.Event()
    errors: list[BaseException] = []

    def drive(scheduler: Scheduler) -> None:
        try:
            for _ in range(ticks):
                if finished.is_set():
                    return
                scheduler.tick()
                if done():
                    finished.set()
        except BaseException as exc:
            errors.append(exc)
            finished.set()

    threads = [threading.Thread(target=drive, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    if not errors and not finished.is_set():
        errors.append(AssertionError(f"not done after {ticks} ticks of each scheduler"))
    return errors
