"""External runs, the wandb-like path: log from any training script, get the analysis.

    with client.start_run("resnet-lr0.1", config={"lr": 0.1}) as run:
        for step, batch in enumerate(loader):
            ...
            run.log({"train_loss": loss.item(), "lr": sched.get_last_lr()[0]}, step=step)
    print(run.analysis().kinds)

`log` never waits for the network: points go to an in-memory buffer that a background
thread sends in batches (see _batcher for the retry and buffer-full policies).
"""

from __future__ import annotations

import atexit
import logging
import operator
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from lrlab._batcher import Batcher, BatcherStats, WhenFull
from lrlab._http import Http
from lrlab._retry import RetryPolicy
from lrlab.errors import LrlabError, NotFound
from lrlab.models import Analysis, RunInfo

log = logging.getLogger("lrlab")

# The batcher retries failed batches itself (for as long as it takes); one attempt each.
_ONE_ATTEMPT = RetryPolicy(retries=0)
_JSON = {"Content-Type": "application/json"}


class RunNotFlushed(LrlabError):
    """finish() or flush() ran out of time with points still unsent (they stay buffered)."""


class _Heartbeat:
    """Tells the server every `interval` seconds that the script is alive, so that a run
    whose script died without finish() can be told from one that is merely quiet (a long
    evaluation): the server ends a run failed after minutes without heartbeat or metrics."""

    def __init__(self, beat: Callable[[], None], interval: float, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(beat, interval), name=name, daemon=True
        )
        self._thread.start()

    def _loop(self, beat: Callable[[], None], interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                beat()
            except NotFound:
                return  # the run is gone, or a server without heartbeats
            except LrlabError as exc:  # the server is away: the next beat tries again
                log.info("lrlab: heartbeat not sent: %s", exc)

    def stop(self) -> None:
        self._stop.set()


class Run:
    """A run being logged. Create it with `Client.start_run`."""

    def __init__(
        self,
        http: Http,
        info: RunInfo,
        *,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        max_points: int = 500_000,
        when_full: WhenFull = "block",
        heartbeat_interval: float = 30.0,
    ) -> None:
        self._http = http
        self.info = info
        self.id = info.id
        self._path = f"/trials/{info.id}/metrics"
        self._step = -1
        self._finished: Analysis | None = None
        self._batcher = Batcher(
            self._post,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_points=max_points,
            when_full=when_full,
            name=f"lrlab-run-{info.id}",
        )
        self._heartbeat = _Heartbeat(self._beat, heartbeat_interval, f"lrlab-beat-{info.id}")
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"Run(id={self.id}, name={self.info.name!r}, pending={self.pending})"

    def _post(self, body: bytes) -> None:
        self._http.send(
            "POST", self._path, content=body, headers=_JSON, idempotent=True, retry=_ONE_ATTEMPT
        )

    def _beat(self) -> None:
        answer = self._http.call("POST", f"/runs/{self.id}/heartbeat", retry=_ONE_ATTEMPT)
        self.info = RunInfo.model_validate(answer)

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record `metrics` (name -> number) at `step` (default: the step after the last
        one logged, starting at 0). Returns at once; values are converted with float() in
        the background, so pass numbers (call .item() on tensors yourself)."""
        if self._finished is not None:
            raise LrlabError(f"run {self.id} is finished; start a new run to log more")
        if step is None:
            step = self._step + 1
        elif type(step) is not int:
            step = operator.index(step)
        if step < 0:
            raise ValueError(f"step must be >= 0, not {step}")
        self._step = step
        self._batcher.add(step, time.time(), dict(metrics))

    @property
    def pending(self) -> int:
        """Points logged and not yet stored (nor dropped)."""
        return self._batcher.pending

    @property
    def stats(self) -> BatcherStats:
        """Points sent and dropped, retries, and the reasons of any drops."""
        return self._batcher.stats

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until everything logged so far is stored."""
        if not self._batcher.flush(timeout):
            raise RunNotFlushed(f"{self.pending} points not yet stored after {timeout} s")

    def finish(self, status: str | None = None, timeout: float | None = 120.0) -> Analysis:
        """Send every point, end the run (succeeded, or `status` "failed") and return its
        analysis. If the server cannot take the points within `timeout`, RunNotFlushed is
        raised and the points stay buffered: call finish() again."""
        if self._finished is not None:
            return self._finished
        if not self._batcher.close(timeout):
            raise RunNotFlushed(
                f"{self.pending} points of run {self.id} not yet stored after {timeout} s; "
                "they are still buffered and retried: call finish() again"
            )
        body = {"status": status} if status else None
        answer = self._http.call("POST", f"/runs/{self.id}/finish", json=body, idempotent=True)
        self._heartbeat.stop()
        self._finished = Analysis.model_validate(answer)
        atexit.unregister(self._at_exit)
        return self._finished

    def refresh(self) -> RunInfo:
        """The run as the server has it now (status, last_step, cancel_requested)."""
        self.info = RunInfo.model_validate(self._http.call("GET", f"/runs/{self.id}"))
        return self.info

    def analysis(self) -> Analysis:
        """The diagnosis so far (provisional until the run is finished)."""
        return Analysis.model_validate(self._http.call("GET", f"/trials/{self.id}/analysis"))

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            # The script failed: keep what it logged, mark the run failed, and let the
            # original exception through (a failure to finish must not hide it).
            try:
                self.finish(status="failed", timeout=30.0)
            except LrlabError:
                self._heartbeat.stop()
                self._batcher.abort()

    def _at_exit(self) -> None:
        # A script that never called finish(): still send what it logged. The beats stop,
        # so the server ends the run failed once it has been silent long enough.
        self._heartbeat.stop()
        self._batcher.close(timeout=30.0)
