"""In-memory stand-ins for the scheduler's ports: a launcher and a clock."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from services.domain.capacity import NodeResources
from services.scheduling.launcher import Assignment, Launcher, RunOutcome, RunReport


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Ledger:
    """What several launchers did together, under one lock (for the multi-scheduler test)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    launches: list[tuple[int, int, str]] = field(default_factory=list)  # trial, attempt, who
    running: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # per sweep
    max_running: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def started(self, a: Assignment, who: str) -> None:
        with self.lock:
            self.launches.append((a.trial_id, a.attempt, who))
            self.running[a.sweep_id] += 1
            self.max_running[a.sweep_id] = max(
                self.max_running[a.sweep_id], self.running[a.sweep_id]
            )

    def ended(self, a: Assignment) -> None:
        with self.lock:
            self.running[a.sweep_id] -= 1


class FakeLauncher(Launcher):
    """Runs nothing: records launches and reports whatever outcome the test chooses (and
    tells the scheduler's on_end listener at once, as a real launcher does).

    `auto` ends every attempt in flight with that outcome at the next poll(), as if each
    trial took one tick. `nodes` is what the cluster's nodes offer (None: unknown).
    `kill_on_cancel` makes cancel() end the attempt as LOST, as a
    launcher that kills the worker process would see it."""

    def __init__(
        self,
        cpus: float = 8.0,
        gpus: float = 0.0,
        *,
        name: str = "fake",
        auto: RunOutcome | None = None,
        kill_on_cancel: bool = False,
        ledger: Ledger | None = None,
        nodes: list[NodeResources] | None = None,
    ) -> None:
        self.cpus, self.gpus, self.name = cpus, gpus, name
        self.cluster_nodes = nodes  # what nodes() says (None: it cannot tell)
        self.auto = auto
        self.kill_on_cancel = kill_on_cancel
        self.ledger = ledger
        self.launches: list[Assignment] = []
        self.in_flight: dict[int, Assignment] = {}
        self.cancels: list[int] = []
        self.max_in_flight = 0
        self.fail_next_launch: Exception | None = None
        self.fail_next_poll: Exception | None = None
        self.launched = threading.Event()  # set on every launch; tests clear it
        self._reports: list[RunReport] = []
        self._lock = threading.Lock()

    # -- the port ------------------------------------------------------------------------
    def can_start(self, cpus: float, gpus: float) -> bool:
        with self._lock:
            used_cpus = sum(a.cpus for a in self.in_flight.values())
            used_gpus = sum(a.gpus for a in self.in_flight.values())
        return used_cpus + cpus <= self.cpus and used_gpus + gpus <= self.gpus

    def launch(self, assignment: Assignment) -> None:
        if self.fail_next_launch is not None:
            exc, self.fail_next_launch = self.fail_next_launch, None
            raise exc
        with self._lock:
            assert assignment.trial_id not in self.in_flight, "launched twice while in flight"
            self.launches.append(assignment)
            self.in_flight[assignment.trial_id] = assignment
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        if self.ledger is not None:
            self.ledger.started(assignment, self.name)
        self.launched.set()

    def cancel(self, trial_id: int) -> None:
        self.cancels.append(trial_id)
        if self.kill_on_cancel and trial_id in self.in_flight:
            self.end(trial_id, RunOutcome.LOST, error="killed by the scheduler")

    def poll(self) -> list[RunReport]:
        if self.fail_next_poll is not None:
            exc, self.fail_next_poll = self.fail_next_poll, None
            raise exc
        if self.auto is not None:
            for trial_id in list(self.in_flight):
                self.end(trial_id, self.auto)
        with self._lock:
            reports, self._reports = self._reports, []
        return reports

    def running(self) -> set[int]:
        with self._lock:
            return set(self.in_flight)

    def nodes(self) -> list[NodeResources] | None:
        return None if self.cluster_nodes is None else list(self.cluster_nodes)

    # -- what the test drives ------------------------------------------------------------
    def end(
        self,
        trial_id: int,
        outcome: RunOutcome,
        *,
        detail: str | None = None,
        error: str | None = None,
        traceback: str | None = None,
        last_step: int | None = None,
    ) -> RunReport:
        """The attempt in flight for this trial ends; the next poll() reports it."""
        with self._lock:
            assignment = self.in_flight.pop(trial_id)
            report = RunReport(
                trial_id=trial_id,
                attempt=assignment.attempt,
                outcome=outcome,
                detail=detail,
                error=error,
                traceback=traceback,
                last_step=last_step,
            )
            self._reports.append(report)
        if self.ledger is not None:
            self.ledger.ended(assignment)
        self._ended()
        return report

    def report(self, report: RunReport) -> None:
        """Queue an arbitrary report (say, a late one about an attempt already requeued)."""
        with self._lock:
            self._reports.append(report)
        self._ended()

    def attempt_of(self, trial_id: int) -> int:
        return self.in_flight[trial_id].attempt
