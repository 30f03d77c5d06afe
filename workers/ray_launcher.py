"""The Ray implementation of the scheduler's launcher port.

Each trial attempt is one Ray task with the trial's num_cpus / num_gpus. Ray keeps worker
processes alive between tasks, so a new trial costs a task submission, not a process
start. Tasks are never retried by Ray (max_retries=0): the scheduler decides about
restarts, from the store, and the trial resumes from its checkpoint.

Each task's result carries a completion callback (`ObjectRef.future()`), so the scheduler
hears of an ended attempt the moment Ray does: no polling thread, no waiting for a tick.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import (
    GetTimeoutError,
    NodeDiedError,
    OwnerDiedError,
    RayActorError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

from services.domain.capacity import NodeResources
from services.scheduling.launcher import Assignment, Launcher, RunOutcome, RunReport

log = logging.getLogger("lrlab.ray")

# Exceptions that mean "the process or node running the attempt went away".
_LOST = (WorkerCrashedError, NodeDiedError, OwnerDiedError, RayActorError)

# How long the cluster's total resources (and its nodes) are trusted: a claim asks
# can_start() about up to a few dozen candidates, and each ray.cluster_resources() is a
# GCS round trip (~0.5 ms). Nodes joining or dying are seen within this.
_TOTALS_TTL_S = 1.0


@ray.remote(max_retries=0)
def _run_attempt(assignment: Assignment) -> RunReport:
    from workers.attempt import run_attempt

    return run_attempt(assignment)


@dataclass
class _InFlight:
    assignment: Assignment
    ref: Any
    cancelled: bool = False


class RayLauncher(Launcher):
    def __init__(self, address: str | None = None, num_cpus: float | None = None) -> None:
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                cpus = None if num_cpus is None else max(1, int(num_cpus))
                ray.init(num_cpus=cpus, log_to_driver=False, include_dashboard=False)
        self._inflight: dict[int, _InFlight] = {}
        self._totals: tuple[float, float, float] | None = None  # (cpus, gpus, read at)
        self._nodes: tuple[list[NodeResources], float] | None = None  # (nodes, read at)

    # -- capacity ------------------------------------------------------------------------
    def _cluster(self) -> tuple[float, float]:
        now = time.monotonic()
        if self._totals is None or now - self._totals[2] > _TOTALS_TTL_S:
            total = ray.cluster_resources()
            self._totals = (total.get("CPU", 0.0), total.get("GPU", 0.0), now)
        return self._totals[0], self._totals[1]

    def _used(self) -> tuple[float, float]:
        cpus = sum(f.assignment.cpus for f in self._inflight.values())
        gpus = sum(f.assignment.gpus for f in self._inflight.values())
        return cpus, gpus

    def nodes(self) -> list[NodeResources]:
        now = time.monotonic()
        if self._nodes is None or now - self._nodes[1] > _TOTALS_TTL_S:
            found = [
                NodeResources(float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0)))
                for node in ray.nodes()
                if node.get("Alive")
                for res in [node.get("Resources") or {}]
            ]
            self._nodes = (found, now)
        return list(self._nodes[0])

    def can_start(self, cpus: float, gpus: float) -> bool:
        total_cpus, total_gpus = self._cluster()
        used_cpus, used_gpus = self._used()
        fits_cpu = used_cpus + cpus <= total_cpus + 1e-9
        fits_gpu = gpus == 0 or used_gpus + gpus <= total_gpus + 1e-9
        return fits_cpu and fits_gpu

    # -- lifecycle -----------------------------------------------------------------------
    def launch(self, assignment: Assignment) -> None:
        ref = _run_attempt.options(
            num_cpus=assignment.cpus,
            num_gpus=assignment.gpus,
            name=f"trial-{assignment.trial_id}-attempt-{assignment.attempt}",
        ).remote(assignment)
        self._inflight[assignment.trial_id] = _InFlight(assignment, ref)
        # Fires on a Ray thread once the result (or the task's error) is there.
        ref.future().add_done_callback(lambda _: self._ended())

    def cancel(self, trial_id: int) -> None:
        flight = self._inflight.get(trial_id)
        if flight is not None and not flight.cancelled:
            flight.cancelled = True
            ray.cancel(flight.ref, force=True)

    def running(self) -> set[int]:
        return set(self._inflight)

    def poll(self) -> list[RunReport]:
        if not self._inflight:
            return []
        refs = {f.ref: tid for tid, f in self._inflight.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        reports = []
        for ref in ready:
            flight = self._inflight.pop(refs[ref])
            reports.append(self._report(flight))
        return reports

    @staticmethod
    def _report(flight: _InFlight) -> RunReport:
        a = flight.assignment
        try:
            report: RunReport = ray.get(flight.ref, timeout=0)
            return report
        except TaskCancelledError:
            outcome = RunOutcome.CANCELLED if flight.cancelled else RunOutcome.LOST
            return RunReport(a.trial_id, a.attempt, outcome, error="the attempt was cancelled")
        except _LOST as exc:
            return RunReport(a.trial_id, a.attempt, RunOutcome.LOST, error=str(exc)[:2000])
        except (RayTaskError, GetTimeoutError) as exc:
            # run_attempt catches training errors itself; reaching here is infrastructure.
            return RunReport(a.trial_id, a.attempt, RunOutcome.LOST, error=str(exc)[:2000])

    def close(self) -> None:
        for trial_id in list(self._inflight):
            self.cancel(trial_id)
