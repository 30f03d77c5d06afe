"""The suite's one wait helper: the condition's value back, or a failure that says what
was waited for and what the condition last returned."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.support.waiting import wait_until


def test_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, [], ["ready"], ["later"]])
    assert wait_until(lambda: next(values), "a list", timeout=5, every=0.001) == ["ready"]


def test_fails_naming_what_it_waited_for_and_the_last_value() -> None:
    counter = itertools.count()
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the answer: not within 0\.05 s \(last value: 0\)"):
        wait_until(lambda: 0 * next(counter), "the answer", timeout=0.05, every=0.01)
    assert time.monotonic() - started < 5
    assert next(counter) >= 3  # it polled, more than once


def test_an_exception_in_the_condition_ends_the_wait_at_once() -> None:
    def dead() -> bool:
        raise RuntimeError("the server exited")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the server exited"):
        wait_until(dead, "a dead server", timeout=60)
    assert time.monotonic() - started < 5
