"""External runs logged under the names frameworks use (Hugging Face, Lightning, Keras) or
names of their own, and configs read in full: through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from services.analysis.live_analyzer import LiveAnalyzer, PassResult
from services.analysis.trial_analysis import run_context, trial_series
from services.domain.records import Trial
from services.settings import Settings
from services.store import Store
from services.store.analysis_queue_repo import AnalysisQueue
from services.tracking.metric_names import MetricNames
from tests.support.api import error_fields, log, start
from tests.support.torch_runs import train_mlp

STEPS = 421


def falling(steps: int = STEPS) -> list[float]:
    return [2.3 * math.exp(-s / 80) + 0.05 for s in range(steps)]


def blowing_up() -> list[float]:
    """Falls to ~0.2 by step 299, then grows 50x every 60 steps and ends non-finite."""
    fall = [2.3 * math.exp(-s / 60) + 0.2 for s in range(300)]
    return [*fall, *(fall[-1] * math.exp((s - 299) / 15) for s in range(300, STEPS - 1)), math.inf]


def stored(store: Store, run: dict[str, Any]) -> Trial:
    return store.trials.get(run["project_id"], run["id"])


def finish(client: TestClient, run_id: int, status: str = "succeeded") -> dict[str, Any]:
    response = client.post(f"/runs/{run_id}/finish", json={"status": status})
    assert response.status_code == 200, response.text
    analysis: dict[str, Any] = response.json()
    return analysis


def test_hugging_face_names_are_read_and_a_blow_up_is_divergence(client: TestClient) -> None:
    run = start(client, config={"learning_rate": 1.0, "optim": "sgd"})
    log(client, run["id"], "loss", blowing_up())
    log(client, run["id"], "learning_rate", [1.0] * STEPS)
    log(client, run["id"], "grad_norm", [1.0] * 300 + [10.0 * 2 ** (s / 20) for s in range(121)])
    log(client, run["id"], "eval_loss", [2.0 - s / 400 for s in range(0, 300, 50)])
    analysis = finish(client, run["id"], "failed")
    assert analysis["kinds"][0] == "divergence", analysis["kinds"]
    assert "healthy" not in analysis["kinds"]
    assert analysis["findings"][0]["changes"]["optimizer.lr"] < 1.0


def test_lightning_and_keras_names_are_read(client: TestClient, store: Store) -> None:
    lightning = start(client)
    log(client, lightning["id"], "train_loss_epoch", [5.0, 4.0, 3.0])  # the fallback only
    log(client, lightning["id"], "train_loss_step", falling())
    log(client, lightning["id"], "lr-Adam", [1e-3] * STEPS)
    keras = start(client)
    log(client, keras["id"], "loss", [1.0, 0.8, 0.7])
    log(client, keras["id"], "accuracy", [0.5, 0.6, 0.7])  # training accuracy: not read
    log(client, keras["id"], "val_accuracy", [0.4, 0.5, 0.55])
    read = {run["id"]: trial_series(store, stored(store, run), 1000) for run in (lightning, keras)}
    steps, values = read[lightning["id"]]["train_loss"]
    assert steps.size == STEPS and values[0] == falling()[0]
    assert set(read[lightning["id"]]) == {"train_loss", "lr"}
    assert list(read[keras["id"]]["val_accuracy"][1]) == [0.4, 0.5, 0.55]
    assert set(read[keras["id"]]) == {"train_loss", "val_accuracy"}


def test_a_declared_mapping_wins_over_the_aliases(client: TestClient) -> None:
    undeclared = start(client)
    declared = start(client, metric_names={"my_loss": "train_loss", "holdout": "val_loss"})
    assert declared["metric_names"] == {"my_loss": "train_loss", "holdout": "val_loss"}
    assert undeclared["metric_names"] == {}
    assert client.get(f"/runs/{declared['id']}").json() == declared
    for run in (undeclared, declared):
        log(client, run["id"], "loss", falling())  # an alias of train_loss
        log(client, run["id"], "my_loss", blowing_up())
    assert finish(client, undeclared["id"])["kinds"] == ["healthy"]  # read `loss`
    assert finish(client, declared["id"])["kinds"][0] == "divergence"  # read `my_loss`


def test_bad_mappings_are_422_naming_metric_names(client: TestClient) -> None:
    cases: list[tuple[Any, str, str]] = [
        ({"holdout": "val_los"}, "metric_names", "'val_los', which is not an analysed series"),
        ({"acc": "accuracy"}, "metric_names", "targets are train_loss, val_loss, val_accuracy"),
        ({"a": "lr", "b": "lr"}, "metric_names", "maps both 'a' and 'b' to 'lr'"),
        ({"my_loss": 3}, "metric_names.my_loss", "valid string"),
        ({"my_loss": "x" * 201}, "metric_names.my_loss", "at most 200 characters"),
        ({"": "train_loss"}, "metric_names[''].[key]", "at least 1 character"),
        (["my_loss"], "metric_names", "valid dictionary"),
    ]
    for mapping, field, rule in cases:
        response = client.post("/runs", json={"metric_names": mapping})
        assert response.status_code == 422, (mapping, response.text)
        fields = error_fields(response)
        assert rule in fields.get(field, ""), (mapping, fields)
    assert client.get("/runs").json()["total"] == 0


def test_a_configs_momentum_and_clipping_reach_the_run_context(
    client: TestClient, store: Store
) -> None:
    """The same blow-up under plain SGD and under SGD with momentum 0.9 and clipping: the
    second run's context holds them, so its advice does not add them again."""
    plain = start(client, config={"optimizer": {"name": "sgd", "lr": 1.0, "momentum": 0.0}})
    configured = start(
        client,
        config={"optimizer": {"name": "sgd", "lr": 1.0, "momentum": 0.9}, "max_grad_norm": 0.01},
    )
    findings = {}
    for run in (plain, configured):
        log(client, run["id"], "train_loss", blowing_up())
        log(client, run["id"], "lr", [1.0] * STEPS)
        log(client, run["id"], "grad_norm", [1.0] * 300 + [2 ** (s / 20) for s in range(121)])
        findings[run["id"]] = finish(client, run["id"], "failed")["findings"][0]

    trial = stored(store, configured)
    context = run_context(trial, trial_series(store, trial, 1000))
    assert context.optimizer == "sgd" and context.momentum == 0.9
    assert context.grad_clip_norm == 0.01

    def suggested(finding: dict[str, Any]) -> set[str]:
        alternatives = [a["changes"] for a in finding["alternatives"]]
        return {key for changes in [finding["changes"], *alternatives] for key in changes}

    assert findings[plain["id"]]["kind"] == findings[configured["id"]]["kind"] == "divergence"
    assert "optimizer.momentum" in suggested(findings[plain["id"]])
    assert "optimizer.momentum" not in suggested(findings[configured["id"]])


def test_the_live_analyzer_sees_steps_logged_under_aliases(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    run = start(client, metric_names={"objective": "train_loss"})
    log(client, run["id"], "objective", blowing_up()[:-1])  # finite: it is still running
    log(client, run["id"], "learning_rate", [1.0] * (STEPS - 1))
    analyzer = LiveAnalyzer(store, Settings(data_dir=tmp_path, analyze_min_new_steps=20))
    assert analyzer.tick() == PassResult(analyzed=1)
    live = client.get(f"/trials/{run['id']}/analysis").json()
    assert live["provisional"] is True and live["kinds"][0] == "divergence"
    assert analyzer.tick() == PassResult()  # nothing new
    log(client, run["id"], "train/loss", [9.0] * 30, first=STEPS - 1)  # an alias, later steps
    assert analyzer.tick() == PassResult(analyzed=1)


def test_logged_step_probes_every_name_in_one_statement(client: TestClient, store: Store) -> None:
    run = start(client)
    log(client, run["id"], "loss", [1.0] * 50)
    log(client, run["id"], "eval_loss", [1.0] * 3, first=70)
    queue = AnalysisQueue(store.db)
    candidates = MetricNames().candidates
    assert queue.logged_step(run["id"], candidates) == 72
    assert queue.logged_step(run["id"], ["loss", "never-logged"]) == 49
    assert queue.logged_step(run["id"], ["never-logged"]) is None
    assert queue.logged_step(run["id"], []) is None


def test_an_external_runs_layer_norms_reach_the_analysis(client: TestClient) -> None:
    """A deep sigmoid net trained here and logged as an SDK user would (lrlab.torch's
    names): its per-layer norms are read with its aliased series and decide the finding."""
    series = train_mlp(depth=6, activation="sigmoid", init_scale=0.5, lr=0.1, steps=300)
    run = start(client, config={"optimizer": "sgd", "learning_rate": 0.1})
    for name, (steps, values) in series.items():
        points = [
            {"name": "loss" if name == "train_loss" else name, "step": int(s), "value": float(v)}
            for s, v in zip(steps, values, strict=True)
        ]
        assert client.post(f"/trials/{run['id']}/metrics", json={"points": points}).is_success
    finding = finish(client, run["id"])["findings"][0]
    assert finding["kind"] == "vanishing_gradients"
    assert finding["evidence"]["metric"] == "grad_norm/00.0"
    assert "optimizer.lr" not in finding["changes"]
