"""Task plug-ins: a package adds a task through entry points, never over HTTP.

Registries are built at import, so each plug-in check runs in a fresh interpreter with the
plug-in's folder on PYTHONPATH (entry points are read from its `*.dist-info`, as pip would
leave them). The demo plug-in lives in `plugin_fixture/`; a broken one is written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.specs import TASKS, TrialSpec
from workers.tasks import TASK_BUILDERS

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "plugin_fixture"
BUILT_IN = ["cartpole", "digits", "regression", "text"]

# Runs inside the plug-in's interpreter; prints one JSON line of findings.
GOOD_PROBE = """
import json, sys
from pathlib import Path

from pydantic import ValidationError

from services.specs import TASKS, TrialSpec, describe_registry

out = {"torch_after_specs": "torch" in sys.modules}
spec = TrialSpec.model_validate(
    {
        "task": {"name": "quadratic", "n_samples": 640, "hidden": 16},
        "optimizer": {"name": "adam", "lr": 0.01},
        "batch_size": 64,
        "budget": {"max_steps": 30},
        "eval_every": 10,
    }
)
out["task"] = spec.task.model_dump()
out["registry"] = {e["name"]: e for e in describe_registry(TASKS)}
try:
    TrialSpec.model_validate({"task": {"name": "quadratic", "degree": 4}})
except ValidationError as exc:
    out["unknown_key"] = str(exc)

from fastapi.testclient import TestClient

from api.app import create_app
from services.settings import Settings
from services.store import open_store

tmp = Path(sys.argv[1])
store = open_store(f"sqlite:///{tmp / 'lrlab.db'}")
project = store.projects.create("alpha")
token = store.projects.issue_token(project.id, "test", is_admin=True)
with TestClient(create_app(Settings(data_dir=tmp / "data"), store)) as client:
    client.headers["Authorization"] = f"Bearer {token.secret}"
    listed = client.get("/tasks")
    out["api_tasks"] = [listed.status_code, [e["name"] for e in listed.json()]]
    job = client.post("/jobs", json={"task": "quadratic"})
    out["api_job"] = [job.status_code, job.json()]
    trials = client.get(f"/sweeps/{job.json()['id']}/trials").json()["items"]
    out["api_trial_task"] = trials[0]["spec"]["task"]
out["torch_after_api"] = "torch" in sys.modules
store.close()

from workers.checkpoints import CheckpointStore
from workers.runner import train


class Sink:
    def __init__(self):
        self.points = {}

    def add(self, name, step, value):
        self.points.setdefault(name, {})[step] = value

    def flush(self):
        pass


class Control:
    stop_reason = None
    last_step = None


sink = Sink()
result = train(spec, sink=sink, checkpoints=CheckpointStore(tmp / "ckpt"), control=Control())
out["outcome"] = result.outcome.value
out["train_loss"] = [v for _, v in sorted(sink.points["train_loss"].items())]
out["val_loss"] = [v for _, v in sorted(sink.points["val_loss"].items())]
print(json.dumps(out))
"""

BAD_ENTRY_POINTS = """
[lrlab.task_specs]
digits = services.specs.tasks:RegressionTask
not_a_model = json:dumps
misnamed = services.specs.tasks:TextTask
broken = lrlab_no_such_module:Task

[lrlab.tasks]
digits = json:dumps
orphan = json:dumps
"""

BAD_PROBE = """
import json

from services.specs import TASKS, DigitsTask, TrialSpec
from workers.tasks import TASK_BUILDERS, build_task

spec = TrialSpec.model_validate({"task": {"name": "digits", "hidden": [8]}})
task = build_task(spec)
print(json.dumps({
    "tasks": sorted(TASKS),
    "builders": sorted(TASK_BUILDERS),
    "digits_params": TASKS["digits"] is DigitsTask,
    "digits_task": type(task).__name__,
}))
"""


def run_probe(probe: str, plugin_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    path = os.pathsep.join([str(plugin_path), str(ROOT)])
    # One intra-op thread, as conftest gives the test process and each trial gets on a worker.
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(probe), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    findings: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return findings, done.stderr


@pytest.fixture(scope="module")
def with_plugin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    findings, _ = run_probe(GOOD_PROBE, FIXTURE, str(tmp_path_factory.mktemp("plugin")))
    return findings


@pytest.mark.subprocess
def test_a_plugin_task_validates_and_is_listed_without_torch(with_plugin: dict[str, Any]) -> None:
    assert with_plugin["task"] == {
        "name": "quadratic",
        "n_samples": 640,
        "coefficient": 3.0,
        "noise": 0.1,
        "hidden": 16,
    }
    entry = with_plugin["registry"]["quadratic"]
    assert entry["description"].startswith("Fit y = coefficient * x^2")
    assert set(entry["params"]["properties"]) == {"n_samples", "coefficient", "noise", "hidden"}
    assert sorted(with_plugin["registry"]) == sorted([*BUILT_IN, "quadratic"])
    # Unknown keys are rejected for plug-ins as for built-ins.
    assert "degree" in with_plugin["unknown_key"]
    # The params side of a plug-in is all the API process loads.
    assert with_plugin["torch_after_specs"] is False
    assert with_plugin["torch_after_api"] is False


@pytest.mark.subprocess
def test_the_api_lists_and_accepts_a_plugin_task(with_plugin: dict[str, Any]) -> None:
    status, names = with_plugin["api_tasks"]
    assert status == 200 and "quadratic" in names and set(BUILT_IN) <= set(names)
    status, body = with_plugin["api_job"]
    assert status == 201, body
    assert body["trial_counts"] == {"queued": 1}
    assert with_plugin["api_trial_task"]["name"] == "quadratic"
    assert with_plugin["api_trial_task"]["coefficient"] == 3.0


@pytest.mark.subprocess
def test_a_worker_trains_a_plugin_task(with_plugin: dict[str, Any]) -> None:
    assert with_plugin["outcome"] == "succeeded"
    losses = with_plugin["train_loss"]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert with_plugin["val_loss"][-1] < with_plugin["val_loss"][0]


def test_without_the_plugin_its_name_is_rejected_with_the_valid_ones() -> None:
    assert "quadratic" not in TASKS and "quadratic" not in TASK_BUILDERS
    with pytest.raises(ValidationError) as caught:
        TrialSpec.model_validate({"task": {"name": "quadratic"}})
    [error] = caught.value.errors()
    assert error["loc"] == ("task", "name")
    assert f"valid names: {', '.join(BUILT_IN)}" in error["msg"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_bad_plugins_are_skipped_with_a_warning_and_built_ins_still_work(
    tmp_path: Path,
) -> None:
    dist_info = tmp_path / "lrlab_plugin_bad-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lrlab_plugin_bad\n")
    (dist_info / "entry_points.txt").write_text(BAD_ENTRY_POINTS)
    findings, stderr = run_probe(BAD_PROBE, tmp_path)
    assert findings == {
        "tasks": BUILT_IN,
        "builders": BUILT_IN,
        "digits_params": True,
        "digits_task": "Digits",
    }
    warnings = [line for line in stderr.splitlines() if "skipping" in line]
    for group, name, why in [
        ("lrlab.task_specs", "digits", "already taken"),
        ("lrlab.task_specs", "not_a_model", "is not a TaskParams subclass"),
        ("lrlab.task_specs", "misnamed", 'must declare name: Literal["misnamed"]'),
        ("lrlab.task_specs", "broken", "lrlab_no_such_module"),
        ("lrlab.tasks", "digits", "already taken"),
        ("lrlab.tasks", "orphan", "no params model"),
    ]:
        assert any(f"{group} plug-in {name!r}" in w and why in w for w in warnings), stderr
