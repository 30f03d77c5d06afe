"""When to retry a request and how long to wait: exponential backoff with jitter.

A request is retried only when doing it twice cannot do harm: when it never reached the
server (connection refused, no connection from the pool) or the server refused it (429),
for any request; and on answers or failures that may come after the server acted
(502/503/504, a dropped connection, a read timeout) only for idempotent requests (reads,
cancels, metric batches: the store keeps one point per (trial, name, step)).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

# Failures before the request left this machine: retrying cannot duplicate anything.
NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Failures after it may have been processed.
MAYBE_SENT: tuple[type[Exception], ...] = (
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
)
REFUSED = frozenset({429})
TRANSIENT = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first; waits `backoff * 2**n` (capped at
    `max_backoff`), each scaled by a random factor in [1 - jitter, 1] so that clients that
    failed together do not return together. A Retry-After header is honoured up to
    `max_retry_after` seconds."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        base = min(self.max_backoff, self.backoff * (2**attempt))
        wait: float = base * (1.0 - self.jitter * self.rng.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def sleep(self, attempt: int, retry_after: float | None = None) -> None:
        time.sleep(self.delay(attempt, retry_after))


def retryable_error(exc: Exception, idempotent: bool) -> bool:
    if isinstance(exc, NOT_SENT):
        return True
    return idempotent and isinstance(exc, MAYBE_SENT)


def retryable_status(status: int, idempotent: bool) -> bool:
    return status in REFUSED or (idempotent and status in TRANSIENT)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
