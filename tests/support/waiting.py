"""The one way a test waits for something another thread or process does: poll a
condition, with a deadline (tests/unit/test_suite_layout.py keeps it the only one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, timeout: float = 30.0, every: float = 0.05
) -> T:
    """Call `condition` every `every` seconds until it returns something truthy, and return
    that. Fails naming `what` and the last value once `timeout` seconds have passed; an
    exception from `condition` (an assertion that the thing waited on is still alive, say)
    ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last value: {value!r})")
        time.sleep(every)  # polling another thread's or process's progress, bounded above
