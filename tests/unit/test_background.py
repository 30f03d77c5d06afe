"""The background loop: ticks on wake-up, backs off while idle, survives a failing tick and
stops at once. Every wait here is on an event or a queue, bounded by a timeout."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator

import pytest

from services.background import BackgroundLoop

HOUR = 3600.0  # an interval no test waits out: only wake() and stop() end the wait
TIMEOUT = 10.0  # the most any step of a test waits for the loop's thread


class Script:
    """A tick that returns (or raises) what the test feeds it, one item per tick, and a
    wait that records its timeout and returns at once, set or not as the loop's event is."""

    def __init__(self) -> None:
        self.results: queue.Queue[bool | Exception] = queue.Queue()
        self.waits: queue.Queue[float] = queue.Queue()

    def tick(self) -> bool:
        result = self.results.get(timeout=TIMEOUT)
        if isinstance(result, Exception):
            raise result
        return result

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self.waits.put(timeout)
        return event.is_set()

    def next_wait(self, result: bool | Exception) -> float:
        """Feed one tick's result; the wait the loop chose after it."""
        self.results.put(result)
        return self.waits.get(timeout=TIMEOUT)


def counting(ticks: queue.Queue[int], worked: bool = True) -> Callable[[], bool]:
    """A tick that reports itself on `ticks`."""

    def tick() -> bool:
        ticks.put(1)
        return worked

    return tick


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def scripted(script: Script) -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop("scripted", script.tick, wait=script.wait)
    loop.start(interval=1, idle_interval=8)
    yield loop
    loop.stop(timeout=0)  # it is blocked in a tick, waiting for a result: ...
    script.results.put(False)  # ... which ends that tick, and the loop with it
    loop.stop(timeout=TIMEOUT)
    assert not loop.running


def test_idle_ticks_double_the_wait_up_to_the_cap_and_work_resets_it(
    script: Script, scripted: BackgroundLoop
) -> None:
    assert [script.next_wait(False) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert script.next_wait(True) == 1  # work: the short interval again
    assert [script.next_wait(False) for _ in range(3)] == [2, 4, 8]


def test_a_wake_up_resets_the_wait(script: Script, scripted: BackgroundLoop) -> None:
    assert [script.next_wait(False) for _ in range(4)] == [1, 2, 4, 8]
    scripted.wake()  # during the next tick: the wait after it ends at once ...
    assert script.next_wait(False) == 8
    assert script.next_wait(False) == 1  # ... and the one after starts short again
    assert script.next_wait(False) == 2


def test_a_failing_tick_counts_as_idle(script: Script, scripted: BackgroundLoop) -> None:
    assert script.next_wait(False) == 1
    assert script.next_wait(RuntimeError("store down")) == 2
    assert script.next_wait(RuntimeError("store down")) == 4
    assert script.next_wait(True) == 1


def test_wake_makes_it_tick_at_once() -> None:
    ticks: queue.Queue[int] = queue.Queue()
    loop = BackgroundLoop("waker", counting(ticks))
    loop.start(HOUR)
    try:
        assert ticks.get(timeout=TIMEOUT) == 1  # the first tick runs on start
        loop.wake()
        assert ticks.get(timeout=TIMEOUT) == 1, "wake() did not make the loop tick"
        loop.wake()
        assert ticks.get(timeout=TIMEOUT) == 1
    finally:
        loop.stop(timeout=TIMEOUT)


def test_a_tick_that_raises_is_logged_with_the_loops_name_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticked: queue.Queue[int] = queue.Queue()
    calls = iter(range(1_000_000))

    def tick() -> bool:
        n = next(calls)
        ticked.put(n)
        if n == 0:
            raise RuntimeError("store down")
        return True

    loop = BackgroundLoop("flaky-loop", tick)
    with caplog.at_level(logging.ERROR, logger="lrlab.background"):
        loop.start(HOUR)
        try:
            assert ticked.get(timeout=TIMEOUT) == 0
            loop.wake()
            assert ticked.get(timeout=TIMEOUT) == 1  # the loop survived the first tick
        finally:
            loop.stop(timeout=TIMEOUT)
    (record,) = [r for r in caplog.records if r.name == "lrlab.background"]
    assert "flaky-loop" in record.getMessage() and record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_stop_ends_the_wait_at_once_and_joins() -> None:
    ticks: queue.Queue[int] = queue.Queue()
    loop = BackgroundLoop("sleeper", counting(ticks, worked=False))
    loop.start(HOUR, idle_interval=HOUR)
    assert ticks.get(timeout=TIMEOUT) == 1
    assert loop.running
    # Waiting an hour between ticks: only a stop that ends the wait joins within TIMEOUT.
    loop.stop(timeout=TIMEOUT)
    assert not loop.running


def test_start_twice_is_refused_and_a_stopped_loop_starts_again() -> None:
    ticks: queue.Queue[int] = queue.Queue()
    loop = BackgroundLoop("again", counting(ticks))
    loop.start(HOUR)
    try:
        with pytest.raises(RuntimeError, match="again is already running"):
            loop.start(HOUR)
    finally:
        loop.stop(timeout=TIMEOUT)
    assert ticks.get(timeout=TIMEOUT) == 1
    loop.start(HOUR)
    try:
        assert ticks.get(timeout=TIMEOUT) == 1  # a new thread, ticking on start
    finally:
        loop.stop(timeout=TIMEOUT)
    assert not loop.running
