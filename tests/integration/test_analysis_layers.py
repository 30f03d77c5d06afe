"""Per-layer gradient norms from the runner, through the store, into the analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from services.specs import TrialSpec
from services.store import Store
from workers.checkpoints import CheckpointStore
from workers.runner import train
from workers.sink import MetricSink

# Six sigmoid layers with weights at half torch's default scale: the gradient fades on
# its way back to the input.
SPEC: dict[str, Any] = {
    "task": {"name": "digits", "hidden": [32] * 6, "activation": "sigmoid", "init_scale": 0.5},
    "optimizer": {"name": "sgd", "lr": 0.1},
    "budget": {"max_steps": 300},
    "eval_every": 50,
}


class Control:
    stop_reason: str | None = None
    last_step: int | None = None


def test_the_analysis_reads_the_layer_series_the_runner_stored(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    job = client.post("/jobs", json=SPEC).json()
    row = client.get(f"/sweeps/{job['id']}/trials").json()["items"][0]
    project, trial = int(row["project_id"]), int(row["id"])
    sink = MetricSink(lambda rows: store.metrics.write(project, trial, rows))
    train(
        TrialSpec.model_validate(SPEC),
        sink=sink,
        checkpoints=CheckpointStore(tmp_path),
        control=Control(),
    )
    sink.close()
    names = store.metrics.names_with_prefix(project, trial, "grad_norm/", 64)
    assert names == [f"grad_norm/{i:02d}.{2 * i}" for i in range(7)]

    body = client.get(f"/trials/{trial}/analysis").json()
    found = {f["kind"]: f for f in body["findings"]}
    vanishing = found["vanishing_gradients"]
    assert vanishing["evidence"]["metric"] == "grad_norm/00.0"
    assert vanishing["evidence"]["last_layer"] == "grad_norm/06.12"
    assert vanishing["evidence"]["layer_gap_decades_last"] <= -3
    # What to change in this spec: the activation and the init, not the lr.
    assert vanishing["changes"] == {"task.activation": "relu", "task.init_scale": 1.0}
