"""GET /recommendations from trials stored in both backends: the suggestion and the trials
behind it, too little history, and projects that never see each other's trials."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.domain.records import TrialStatus
from services.settings import Settings
from services.specs import SweepSpec
from services.store import Store
from services.sweeps.submit import submit_sweep

BASE = {"task": "digits", "optimizer": {"name": "sgd"}, "batch_size": 32}
# lr -> final val_loss: 0.1 is best, then 0.3, then 0.03.
FINALS = {0.001: 2.0, 0.01: 1.1, 0.03: 0.4, 0.1: 0.2, 0.3: 0.3}


def ended_sweep(
    store: Store,
    project: str,
    finals: dict[float, float],
    base: dict[str, Any] | None = None,
    status: TrialStatus = TrialStatus.SUCCEEDED,
) -> dict[float, int]:
    """A grid over the lrs of `finals`, each trial ended with that final val_loss."""
    found = store.projects.get_by_name(project)
    assert found is not None
    spec = SweepSpec.model_validate(
        {"base": base or BASE, "space": {"optimizer.lr": list(finals)}, "max_concurrent": 100}
    )
    sweep = submit_sweep(store, Settings(), found.id, spec)
    ids = {}
    while (trial := store.trial_states.claim_next("test", lambda t: True)) is not None:
        lr = trial.params["optimizer.lr"]
        store.metrics.write(trial.project_id, trial.id, [("val_loss", 9, finals[lr], 0.0)])
        store.metrics.write(trial.project_id, trial.id, [("train_loss", 9, finals[lr], 0.0)])
        assert store.trial_states.finish(trial.id, 0, status, last_step=9) is status
        ids[lr] = trial.id
    assert len(ids) == len(finals), sweep
    return ids


def get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(
        "/recommendations", params={"task": "digits", "optimizer": "sgd", **params}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_suggestion_comes_from_the_best_stored_trials(
    client: TestClient, other_client: TestClient, store: Store
) -> None:
    ids = ended_sweep(store, "alpha", FINALS)
    # The other project's history is far better at a far larger lr: it must not count.
    ended_sweep(store, "beta", {3.0: 0.01, 5.0: 0.01, 8.0: 0.01})
    body = get(client)
    assert body["enough_history"] is True and body["match"] == "exact"
    assert body["metric"] == {"name": "val_loss", "goal": "minimize"}
    assert body["evidence"]["trial_ids"] == [ids[lr] for lr in (0.1, 0.3, 0.03, 0.01, 0.001)]
    assert body["evidence"]["top_trial_ids"] == [ids[0.1], ids[0.3], ids[0.03]]
    assert body["lr"] == pytest.approx(
        math.exp((math.log(0.1) + math.log(0.3) + math.log(0.03)) / 3)
    )
    assert body["range"] == {"low": 0.03, "high": 0.3}
    assert body["query"]["model"] == "mlp" and body["query"]["rule"] == "linear"
    assert {t["trial_id"] for t in body["trials"]} == set(ids.values())
    # And the other project sees only its own three trials.
    other = get(other_client)
    assert other["lr"] > 2 and len(other["evidence"]["trial_ids"]) == 3
    assert not set(other["evidence"]["trial_ids"]) & set(ids.values())


def test_too_little_history_says_so_and_points_at_lr_find(client: TestClient, store: Store) -> None:
    ended_sweep(store, "alpha", {0.1: 0.3, 0.3: 0.2})
    ended_sweep(store, "alpha", {0.05: 0.3}, base={**BASE, "optimizer": {"name": "adam"}})
    body = get(client)
    assert body["enough_history"] is False and body["lr"] is None and body["range"] is None
    assert "too little history" in body["reasoning"] and "POST /lr-find" in body["reasoning"]
    assert body["evidence"]["count"] == 0 and body["evidence"]["considered"] == 2


def test_diverged_trials_bound_the_range_and_range_tests_never_count(
    client: TestClient, store: Store
) -> None:
    ids = ended_sweep(store, "alpha", FINALS)
    diverged = ended_sweep(store, "alpha", {0.2: math.nan}, status=TrialStatus.PRUNED)
    started = client.post("/lr-find", json={"base": BASE})
    assert started.status_code == 201
    body = get(client)
    assert body["evidence"]["diverged_trial_ids"] == [diverged[0.2]]
    assert body["range"]["high"] == 0.2
    assert started.json()["trial_id"] not in {t["trial_id"] for t in body["trials"]}
    assert len(body["evidence"]["trial_ids"]) == len(ids)


def test_other_batch_sizes_are_moved_by_the_rule_it_names(client: TestClient, store: Store) -> None:
    ended_sweep(store, "alpha", {0.2: 0.3, 0.4: 0.2, 0.8: 0.25}, base={**BASE, "batch_size": 128})
    body = get(client, batch_size="64")
    assert body["match"] == "batch_size_adjusted" and body["batch_size_rule"] == "linear"
    assert body["lr"] == pytest.approx(0.2)
    assert "linear rule" in body["reasoning"]
    sqrt = get(client, batch_size="64", rule="sqrt")
    assert sqrt["lr"] == pytest.approx(0.4 / math.sqrt(2))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"task": "mnist"}, "task"),
        ({"optimizer": "nag"}, "optimizer"),
        ({"model": "resnet"}, "model"),
        ({"batch_size": "-3"}, "batch_size"),
        ({"schedule": "warm"}, "schedule"),
        ({"rule": "cubic"}, "rule"),
    ],
)
def test_bad_queries_are_422_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    query = {"task": "digits", "optimizer": "sgd", **params}
    response = client.get("/recommendations", params=query)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == [field]


def test_task_and_optimizer_are_required(client: TestClient) -> None:
    response = client.get("/recommendations")
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"task", "optimizer"}
