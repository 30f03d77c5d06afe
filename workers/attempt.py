"""One attempt of one trial inside a worker process: wiring store, sink, lease and runner."""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Mapping

import torch

from services.domain.stored_specs import decode_trial_spec
from services.scheduling.launcher import Assignment, RunOutcome, RunReport
from services.store import Store, open_store
from services.sweeps.trial_pruning import pruning_for
from workers.checkpoints import CheckpointStore
from workers.control import TrialControl
from workers.runner import EvalHook, train
from workers.sink import MetricSink

log = logging.getLogger("lrlab.worker")

# Ray reuses worker processes across tasks: one store (engine + pool) per database.
_STORES: dict[str, Store] = {}


def _store(url: str) -> Store:
    if url not in _STORES:
        _STORES[url] = open_store(url, upgrade=False)
    return _STORES[url]


def _device(gpus: float) -> tuple[torch.device, str | None]:
    """CUDA when the trial asked for a GPU and one is there; else the CPU, and why not."""
    if gpus <= 0:
        return torch.device("cpu"), None
    if torch.cuda.is_available():
        return torch.device("cuda"), None
    why = f"asked for {gpus:g} GPU but CUDA is not available on {socket.gethostname()}"
    return torch.device("cpu"), f"training on CPU: {why}"


def _early_stop(store: Store, a: Assignment, control: TrialControl) -> EvalHook | None:
    """The sweep's pruner, asked at each evaluation; a pruned trial stops before its next
    step (the store already records it as pruned, with the reason)."""
    pruning = pruning_for(store, a.trial_id, a.attempt)
    if pruning is None:
        return None

    def on_eval(step: int, metrics: Mapping[str, float]) -> None:
        reason = pruning(step, metrics)
        if reason is not None:
            control.stop_reason = reason

    return on_eval


def run_attempt(a: Assignment) -> RunReport:
    # Ray sets OMP_NUM_THREADS per task, but a reused process keeps its old torch setting.
    torch.set_num_threads(max(1, int(a.cpus)))
    store = _store(a.database_url)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    device, why_cpu = _device(a.gpus)
    if why_cpu is not None:
        log.warning("trial %s attempt %s: %s", a.trial_id, a.attempt, why_cpu)
    if not store.trial_states.attach_worker(a.trial_id, a.attempt, worker, note=why_cpu):
        return RunReport(a.trial_id, a.attempt, RunOutcome.LOST, error="lease lost before start")
    # Every 0.5 s at most, so a live reader (the analyzer, a stream) sees a trial promptly.
    sink = MetricSink(
        lambda rows: store.metrics.write(a.project_id, a.trial_id, rows), max_age_seconds=0.5
    )
    control = TrialControl(lambda step: store.trial_states.heartbeat(a.trial_id, a.attempt, step))
    control.start()
    try:
        spec = decode_trial_spec(a.spec, trial_id=a.trial_id)
        result = train(
            spec,
            sink=sink,
            checkpoints=CheckpointStore(a.checkpoint_dir),
            control=control,
            device=device,
            on_eval=_early_stop(store, a, control),
        )
        sink.close()
        return RunReport(
            a.trial_id, a.attempt, result.outcome, detail=result.detail, last_step=result.last_step
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        trace = traceback.format_exc()
        try:
            sink.close()
        except Exception as sink_exc:  # the training error is the one worth reporting
            trace += f"\n(also failed to store metrics: {sink_exc})"
        return RunReport(
            a.trial_id, a.attempt, RunOutcome.FAILED, error=error[:2000], traceback=trace
        )
    finally:
        control.close()
