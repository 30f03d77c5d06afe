"""The worker's side of a trial's lease: heartbeats, and the reasons to stop early."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from services.domain.trial_life import Heartbeat

log = logging.getLogger("lrlab.worker.control")


class TrialControl:
    """Sends a heartbeat every `interval` seconds and turns the answer into a stop reason
    that the training loop reads once per step (a plain attribute: no I/O in the loop)."""

    def __init__(
        self,
        beat: Callable[[int | None], Heartbeat],
        *,
        interval: float = 1.0,
    ) -> None:
        self._beat = beat
        self._interval = interval
        self.stop_reason: str | None = None
        self.last_step: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lrlab-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                reply = self._beat(self.last_step)
            except Exception as exc:  # a missed beat is not fatal; the lease allows several
                log.warning("heartbeat failed: %s", exc)
                continue
            if not reply.alive:
                self.stop_reason = "lost its lease (the trial was requeued elsewhere)"
            elif reply.cancel_requested:
                self.stop_reason = "cancelled by request"
