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
        ({"optimizer": "adam", "momentum": "0.9"}, "momentum"),
        ({"momentum": "-1"}, "momentum"),
        ({"nesterov": "true"}, "nesterov"),  # with momentum 0, as a trial spec says
        ({"optimizer": "adam", "betas": "0.9"}, "betas"),
        ({"max_steps": "0"}, "max_steps"),
        ({"max_steps": "100", "epochs": "2"}, "epochs"),
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


HEAVY = {**BASE, "optimizer": {"name": "sgd", "momentum": 0.9}}
EVERY_PART = ["task", "model", "optimizer", "momentum", "nesterov", "batch_size", "schedule"]
# With momentum 0.9 the same steps come at a tenth of the lr: 0.01 is best.
HEAVY_FINALS = {0.001: 0.4, 0.003: 0.3, 0.01: 0.2, 0.03: 0.5, 0.1: 2.0}


def test_sgd_with_and_without_momentum_are_never_pooled(client: TestClient, store: Store) -> None:
    plain = ended_sweep(store, "alpha", FINALS)
    heavy = ended_sweep(store, "alpha", HEAVY_FINALS, base=HEAVY)
    body = get(client)  # plain SGD: momentum 0, as a trial spec without one trains
    assert set(body["evidence"]["trial_ids"]) == set(plain.values())
    assert body["query"]["optimizer_params"] == {"momentum": 0.0, "nesterov": False}
    assert body["matched_on"] == EVERY_PART
    assert body["widened"] == [] and body["match"] == "exact"
    with_momentum = get(client, momentum="0.9")
    assert set(with_momentum["evidence"]["trial_ids"]) == set(heavy.values())
    assert with_momentum["lr"] == pytest.approx(
        math.exp((math.log(0.01) + math.log(0.003) + math.log(0.001)) / 3)
    )
    assert {t["optimizer_params"]["momentum"] for t in with_momentum["trials"]} == {0.9}


def test_a_nearby_momentum_is_used_and_said(client: TestClient, store: Store) -> None:
    ended_sweep(store, "alpha", HEAVY_FINALS, base=HEAVY)
    body = get(client, momentum="0.85")
    assert body["enough_history"] is True and body["match"] == "optimizer_near"
    assert "momentum" not in body["matched_on"]
    assert body["widened"] == [
        "momentum: too few trials with momentum 0.85; used momentum in [0.7, 0.925] "
        "(the trials had 0.9)"
    ]
    assert "Widened: momentum" in body["reasoning"]
    # No trial without momentum: plain SGD gets no number from heavy-ball trials.
    assert get(client)["enough_history"] is False


def test_the_budget_is_matched_when_asked(client: TestClient, store: Store) -> None:
    short = ended_sweep(store, "alpha", FINALS, base={**BASE, "budget": {"max_steps": 200}})
    long = ended_sweep(store, "alpha", HEAVY_FINALS, base={**BASE, "budget": {"max_steps": 3000}})
    body = get(client, max_steps="250")
    assert set(body["evidence"]["trial_ids"]) == set(short.values())
    assert "budget" in body["matched_on"] and body["query"]["max_steps"] == 250
    assert set(get(client, max_steps="3000")["evidence"]["trial_ids"]) == set(long.values())
    pooled = get(client)
    assert len(pooled["evidence"]["trial_ids"]) == 10
    assert any(
        "no budget asked: the trials trained 200 to 3000 steps" in n for n in pooled["notes"]
    )
    widened = get(client, max_steps="20")
    assert widened["match"] == "any_budget" and "budget" not in widened["matched_on"]
    assert widened["widened"] == [
        "budget: too few trials near max_steps 20 (trials of 10 to 40 steps); trials of any "
        "length count (they trained 200 to 3000 steps)"
    ]
