"""The notifier: a thread that fills the webhook outbox and empties it.

Each tick enqueues the events the notify settings ask for (services.alerts.alert_events), then
claims the due ones and posts them from a small pool of threads (services.alerts.webhooks), so a
slow hook holds up neither the API nor training, nor, beyond its timeout, the other hooks.
A failed post is retried with exponential backoff (webhook_backoff_seconds, doubling, at
most webhook_backoff_max_seconds) until webhook_max_attempts; then it is given up on, with
its last error kept. Time comes from an injectable clock, so tests drive tick() directly.

Its loop (services.background) backs off while the outbox holds nothing pending and a
scan finds nothing new; wake() (a finding or an ended sweep may be news) brings it back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts.alert_events import Scanner
from services.alerts.webhooks import Delivery, WebhookSender
from services.background import BackgroundLoop
from services.domain.outbox import Notification
from services.settings import Settings
from services.store import Store
from services.store.tables import utcnow

log = logging.getLogger("lrlab.notifier")

BATCH = 32  # events claimed per tick
SENDERS = 4  # posts in flight at once


@dataclass(frozen=True)
class NotifierTick:
    enqueued: int = 0
    delivered: int = 0
    retrying: int = 0  # failed this time, tried again later
    failed: int = 0  # given up on


class Notifier:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        sender: WebhookSender | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._scanner = Scanner(store, started=clock())
        self._sender = sender or WebhookSender(
            settings.webhook_hosts,
            timeout=settings.webhook_timeout_seconds,
            secret=settings.webhook_secret,
        )
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="lrlab-webhook")
        self._tick_lock = threading.Lock()
        self._loop = BackgroundLoop("notifier", self._loop_tick)

    def backoff(self, attempt: int) -> timedelta:
        """The wait after the `attempt`-th failed post (1-based)."""
        s = self._settings
        seconds = s.webhook_backoff_seconds * 2 ** min(attempt - 1, 30)
        return timedelta(seconds=min(seconds, s.webhook_backoff_max_seconds))

    @property
    def _lease(self) -> timedelta:
        # Longer than any post can take (connect + write + read timeouts, and some), so a
        # claim only lapses when its notifier died.
        return timedelta(seconds=3 * self._settings.webhook_timeout_seconds + 30)

    def tick(self, now: datetime | None = None) -> NotifierTick:
        with self._tick_lock:
            now = now or self._clock()
            enqueued = self._scanner.scan(now)
            due = self._store.notifications.claim_due(now, now + self._lease, BATCH)
            results = list(self._pool.map(self._send, due))
            counts = {"delivered": 0, "retrying": 0, "failed": 0}
            for notification, delivery in zip(due, results, strict=True):
                counts[self._record(notification, delivery, now)] += 1
            return NotifierTick(enqueued=enqueued, **counts)

    def _send(self, n: Notification) -> Delivery:
        try:
            return self._sender.send(n.url, n.key, n.event)
        except Exception as exc:  # a bug must not lose the event: it is retried
            log.exception("webhook %s: sending failed", n.key)
            return Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")

    def _record(self, n: Notification, delivery: Delivery, now: datetime) -> str:
        notifications = self._store.notifications
        if delivery.ok:
            notifications.delivered(n.id, now)
            return "delivered"
        error = delivery.error or "failed"
        attempt = n.attempts + 1
        if not delivery.retry or attempt >= self._settings.webhook_max_attempts:
            log.warning(
                "webhook %s to %s given up after %d attempts: %s", n.key, n.url, attempt, error
            )
            notifications.attempt_failed(n.id, error, now, retry_at=None)
            return "failed"
        notifications.attempt_failed(n.id, error, now, retry_at=now + self.backoff(attempt))
        return "retrying"

    # -- background loop ---------------------------------------------------------------------
    def start(self) -> None:
        """Tick every notifier_interval_seconds (or at once after wake()) in a daemon
        thread; with nothing pending and nothing new, less and less often, up to
        idle_interval_max_seconds."""
        s = self._settings
        self._loop.start(s.notifier_interval_seconds, s.idle_interval_max_seconds)

    def wake(self) -> None:
        self._loop.wake()

    def stop(self, timeout: float | None = None) -> None:
        self._loop.stop(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sender.close()

    def _loop_tick(self) -> bool:
        # Pending events (retries among them) keep the interval short, as they always did.
        return self.tick() != NotifierTick() or self._store.notifications.has_pending()
