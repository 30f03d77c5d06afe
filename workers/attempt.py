"""One attempt of one trial inside a worker process: wiring store, sink, lease and runner."""

from __future__ import annotations

import os
import socket
import traceback

import torch

from services.launcher import Assignment, RunOutcome, RunReport
from services.specs import TrialSpec
from services.store import Store, open_store
from workers.checkpoints import CheckpointStore
from workers.control import TrialControl
from workers.runner import train
from workers.sink import MetricSink

# Ray reuses worker processes across tasks: one store (engine + pool) per database.
_STORES: dict[str, Store] = {}


def _store(url: str) -> Store:
    if url not in _STORES:
        _STORES[url] = open_store(url, upgrade=False)
    return _STORES[url]


def _device(gpus: float) -> torch.device:
    return torch.device("cuda") if gpus > 0 and torch.cuda.is_available() else torch.device("cpu")


def run_attempt(a: Assignment) -> RunReport:
    # Ray sets OMP_NUM_THREADS per task, but a reused process keeps its old torch setting.
    torch.set_num_threads(max(1, int(a.cpus)))
    store = _store(a.database_url)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if not store.trial_states.attach_worker(a.trial_id, a.attempt, worker):
        return RunReport(a.trial_id, a.attempt, RunOutcome.LOST, error="lease lost before start")
    sink = MetricSink(lambda rows: store.metrics.write(a.trial_id, rows))
    control = TrialControl(lambda step: store.trial_states.heartbeat(a.trial_id, a.attempt, step))
    control.start()
    try:
        spec = TrialSpec.model_validate(a.spec)
        result = train(
            spec,
            sink=sink,
            checkpoints=CheckpointStore(a.checkpoint_dir),
            control=control,
            device=_device(a.gpus),
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
