"""Sweeps and jobs through the HTTP API: submit, list, cancel, registries, invalid specs."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from services.settings import Settings
from services.specs import OPTIMIZERS, SCHEDULES, TASKS
from services.store import Store

TASK = {"name": "digits"}


def job(**overrides: Any) -> dict[str, Any]:
    """A valid trial spec (the body of POST /jobs) with top-level overrides."""
    return {"task": TASK, **overrides}


def sweep(**overrides: Any) -> dict[str, Any]:
    """A valid sweep spec (the body of POST /sweeps) with top-level overrides."""
    return {"base": job(), **overrides}


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def trials_of(client: TestClient, sweep_id: int, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/sweeps/{sweep_id}/trials", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def sweep_total(client: TestClient) -> int:
    total: int = client.get("/sweeps").json()["total"]
    return total


def assert_invalid(response: Any, field: str, message: str, status: int = 422) -> None:
    """One error names exactly `field`, and its message contains `message`."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    matching = [e for e in detail if e["field"] == field]
    assert matching, f"no error at field {field!r}: {detail}"
    assert any(message in e["message"] for e in matching), detail
    assert all(e["type"] for e in detail)


# -- submitting ---------------------------------------------------------------------------


def test_grid_sweep_queues_one_trial_per_combination(client: TestClient) -> None:
    lrs, batch_sizes = [0.1, 0.01, 0.001], [16, 64]
    spec = sweep(space={"optimizer.lr": lrs, "batch_size": batch_sizes})
    body = created(client.post("/sweeps", json=spec))
    assert body["method"] == "grid"
    assert body["status"] == "running"
    assert body["trial_counts"] == {"queued": 6}

    trials = trials_of(client, body["id"])
    assert [t["number"] for t in trials] == list(range(6))
    assert [(t["params"]["optimizer.lr"], t["params"]["batch_size"]) for t in trials] == list(
        itertools.product(lrs, batch_sizes)
    )
    for trial in trials:
        assert trial["status"] == "queued"
        assert trial["spec"]["optimizer"]["lr"] == trial["params"]["optimizer.lr"]
        assert trial["spec"]["batch_size"] == trial["params"]["batch_size"]


def test_grid_sweep_over_a_whole_registry_entry(client: TestClient) -> None:
    optimizers = [{"name": "adam", "lr": 0.001}, {"name": "sgd", "lr": 0.1, "momentum": 0.9}]
    body = created(client.post("/sweeps", json=sweep(space={"optimizer": optimizers})))
    specs = [t["spec"]["optimizer"] for t in trials_of(client, body["id"])]
    assert [(o["name"], o["lr"]) for o in specs] == [("adam", 0.001), ("sgd", 0.1)]
    assert "momentum" not in specs[0] and specs[1]["momentum"] == 0.9


def test_job_is_a_sweep_of_one_trial(client: TestClient) -> None:
    body = created(client.post("/jobs", json=job(optimizer={"name": "adam", "lr": 3e-4})))
    assert body["method"] == "single"
    assert body["trial_counts"] == {"queued": 1}
    [trial] = trials_of(client, body["id"])
    assert trial["params"] == {}
    assert trial["spec"]["optimizer"]["name"] == "adam"
    assert trial["spec"]["optimizer"]["lr"] == 3e-4
    assert client.get(f"/trials/{trial['id']}").json()["sweep_id"] == body["id"]


def test_get_sweep_returns_what_was_created(client: TestClient) -> None:
    body = created(client.post("/sweeps", json=sweep(name="lr-range", space={"seed": [1, 2]})))
    fetched = client.get(f"/sweeps/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert body["name"] == "lr-range"


def test_unknown_sweep_is_404(client: TestClient) -> None:
    response = client.get("/sweeps/999999")
    assert response.status_code == 404, response.text
    assert "not found" in response.json()["detail"][0]["message"]


# -- listing ------------------------------------------------------------------------------


def test_sweep_pages_cover_every_sweep_once(client: TestClient) -> None:
    ids = [created(client.post("/jobs", json=job(seed=i)))["id"] for i in range(5)]
    seen: list[int] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = client.get("/sweeps", params={"limit": 2, "offset": offset}).json()
        assert page["total"] == 5
        assert page["limit"] == 2 and page["offset"] == offset
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        offset = page["next_offset"]
        pages += 1
    assert pages == 3
    assert seen == sorted(ids, reverse=True)  # newest first


def test_sweep_page_past_the_end_is_empty(client: TestClient) -> None:
    created(client.post("/jobs", json=job()))
    page = client.get("/sweeps", params={"offset": 10}).json()
    assert (page["items"], page["total"], page["next_offset"]) == ([], 1, None)


@pytest.mark.parametrize(("limit", "message"), [(501, "at most 500"), (0, "greater than")])
def test_sweep_limit_out_of_range_is_422(client: TestClient, limit: int, message: str) -> None:
    assert_invalid(client.get("/sweeps", params={"limit": limit}), "limit", message)


def test_trials_filtered_by_status(client: TestClient) -> None:
    body = created(client.post("/sweeps", json=sweep(space={"seed": [1, 2, 3]})))
    first = trials_of(client, body["id"])[0]
    assert client.post(f"/trials/{first['id']}/cancel").json()["status"] == "cancelled"

    cancelled = trials_of(client, body["id"], status="cancelled")
    queued = trials_of(client, body["id"], status="queued")
    assert [t["id"] for t in cancelled] == [first["id"]]
    assert len(queued) == 2 and first["id"] not in [t["id"] for t in queued]
    assert trials_of(client, body["id"], status="running") == []


def test_unknown_trial_status_is_422(client: TestClient) -> None:
    body = created(client.post("/jobs", json=job()))
    response = client.get(f"/sweeps/{body['id']}/trials", params={"status": "bogus"})
    assert_invalid(response, "status", "queued")
    assert response.json()["detail"][0]["in"] == "query"


# -- cancelling ---------------------------------------------------------------------------


def test_cancel_sweep_cancels_its_queued_trials(client: TestClient) -> None:
    body = created(client.post("/sweeps", json=sweep(space={"optimizer.lr": [0.1, 0.2]})))
    response = client.post(f"/sweeps/{body['id']}/cancel")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["finished_at"] is not None
    assert cancelled["trial_counts"] == {"cancelled": 2}
    assert client.get(f"/sweeps/{body['id']}").json()["status"] == "cancelled"

    for trial in trials_of(client, body["id"]):
        assert trial["status"] == "cancelled"
        assert trial["finished_at"] is not None
        events = client.get(f"/trials/{trial['id']}/events").json()
        assert [e["status"] for e in events] == ["queued", "cancelled"]
        assert all(e["at"] for e in events)


def test_cancel_sweep_twice_changes_nothing(client: TestClient) -> None:
    body = created(client.post("/jobs", json=job()))
    first = client.post(f"/sweeps/{body['id']}/cancel").json()
    second = client.post(f"/sweeps/{body['id']}/cancel")
    assert second.status_code == 200
    assert second.json() == first
    [trial] = trials_of(client, body["id"])
    assert len(client.get(f"/trials/{trial['id']}/events").json()) == 2


def test_cancel_one_trial_leaves_the_others(client: TestClient) -> None:
    body = created(client.post("/sweeps", json=sweep(space={"seed": [1, 2]})))
    first, second = trials_of(client, body["id"])
    response = client.post(f"/trials/{first['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert client.get(f"/trials/{second['id']}").json()["status"] == "queued"
    assert client.get(f"/sweeps/{body['id']}").json()["trial_counts"] == {
        "cancelled": 1,
        "queued": 1,
    }


# -- methods and registries ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_sampling_methods_are_not_accepted_yet(client: TestClient, method: str) -> None:
    space = {"optimizer.lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}}
    response = client.post("/sweeps", json=sweep(method=method, space=space))
    assert_invalid(response, "method", method)
    assert "grid" in response.json()["detail"][0]["message"]
    assert sweep_total(client) == 0


@pytest.mark.parametrize(
    ("path", "registry"),
    [("/tasks", TASKS), ("/optimizers", OPTIMIZERS), ("/schedules", SCHEDULES)],
)
def test_registry_lists_every_entry_with_a_params_schema(
    client: TestClient, path: str, registry: dict[str, Any]
) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    entries = response.json()
    assert sorted(e["name"] for e in entries) == sorted(registry)
    for entry in entries:
        schema = entry["params"]
        assert schema["type"] == "object", entry
        assert isinstance(schema.get("properties"), dict), entry
        assert "name" not in schema["properties"]
        assert entry["description"]


def test_optimizer_schemas_describe_the_learning_rate(client: TestClient) -> None:
    for entry in client.get("/optimizers").json():
        lr = entry["params"]["properties"]["lr"]
        assert lr["exclusiveMinimum"] == 0, entry["name"]


# -- invalid specs ------------------------------------------------------------------------

DIGITS_CYCLIC = {"name": "cyclic", "max_lr": 0.005}
LOG_UNIFORM = {"distribution": "log_uniform", "low": 0, "high": 0.1}

# (path, body, field, message substring); bodies are JSON values, sent as JSON.
INVALID_SPECS = [
    pytest.param("/jobs", job(optimizer={"name": "sgd", "lr": 0}), "optimizer.lr", "greater than 0", id="lr-zero"),
    pytest.param("/jobs", job(optimizer={"name": "sgd", "lr": -0.1}), "optimizer.lr", "greater than 0", id="lr-negative"),
    pytest.param("/jobs", job(optimizer={"name": "sgd", "lr": "NaN"}), "optimizer.lr", "finite", id="lr-nan-string"),
    pytest.param("/jobs", job(optimizer={"name": "sgd", "lr": "Infinity"}), "optimizer.lr", "finite", id="lr-inf-string"),
    pytest.param("/jobs", job(optimizer={"name": "adamax"}), "optimizer.name", "adagrad, adam, adamw, lbfgs, rmsprop, sgd", id="unknown-optimizer"),
    pytest.param("/jobs", job(optimizer="adamax"), "optimizer.name", "unknown optimizer 'adamax'", id="unknown-optimizer-bare"),
    pytest.param("/jobs", job(optimizer={"name": "adam", "momentum": 0.9}), "optimizer.momentum", "unknown key 'momentum' for optimizer 'adam'", id="momentum-with-adam"),
    pytest.param("/jobs", job(learning_rate=0.1), "learning_rate", "valid keys: batch_size", id="unknown-top-level-key"),
    pytest.param("/sweeps", sweep(spaces={}), "spaces", "unknown key 'spaces' for sweep spec", id="unknown-sweep-key"),
    pytest.param("/jobs", job(regularization={"l3": 0.1}), "regularization.l3", "valid keys: dropout", id="unknown-nested-key"),
    pytest.param("/jobs", job(task={"name": "digits", "layers": 3}), "task.layers", "unknown key 'layers' for task 'digits'", id="unknown-task-key"),
    pytest.param("/jobs", job(batch_size=0), "batch_size", "integer >= 1", id="batch-size-zero"),
    pytest.param("/jobs", job(batch_size="half"), "batch_size", "'half'", id="batch-size-half"),
    pytest.param("/jobs", job(batch_size=True), "batch_size", "integer >= 1", id="batch-size-bool"),
    pytest.param("/jobs", job(schedule={"name": "cyclic", "base_lr": 0.1, "max_lr": 0.1}), "schedule.max_lr", "must be greater than base_lr (0.1)", id="cyclic-max-le-base"),
    pytest.param("/jobs", job(schedule=DIGITS_CYCLIC), "schedule.max_lr", "the optimizer.lr since schedule.base_lr is unset", id="cyclic-max-below-optimizer-lr"),
    pytest.param("/jobs", job(optimizer={"name": "sgd", "nesterov": True}), "optimizer.nesterov", "nesterov requires momentum > 0", id="nesterov-without-momentum"),
    pytest.param("/jobs", job(schedule={"name": "multistep", "milestones": [100, 50]}), "schedule.milestones", "strictly increasing", id="multistep-decreasing"),
    pytest.param("/jobs", job(schedule={"name": "multistep", "milestones": [50, 50]}), "schedule.milestones", "strictly increasing", id="multistep-repeated"),
    pytest.param("/jobs", job(regularization={"grad_clip_norm": 1.0, "grad_clip_value": 0.5}), "regularization.grad_clip_value", "mutually exclusive", id="both-grad-clips"),
    pytest.param("/jobs", job(regularization={"l2": 1e-4}, optimizer={"name": "sgd", "weight_decay": 1e-4}), "regularization.l2", "set weight decay once", id="l2-and-weight-decay"),
    pytest.param("/jobs", job(budget={"epochs": 3, "max_steps": 100}), "budget", "exactly one of epochs or max_steps (got both)", id="budget-both"),
    pytest.param("/jobs", job(budget={}), "budget", "(got neither)", id="budget-neither"),
    pytest.param("/jobs", job(resources={"gpus": 1.5}), "resources.gpus", "whole number", id="gpus-1.5"),
    pytest.param("/sweeps", sweep(space={"optimizer.learning_rate": [0.1]}), "space['optimizer.learning_rate']", "unknown path 'optimizer.learning_rate'", id="unknown-space-path"),
    pytest.param("/sweeps", sweep(space={"epochs": [1, 2]}), "space.epochs", "valid top-level fields", id="unknown-space-top-level"),
    pytest.param("/sweeps", sweep(method="random", space={"optimizer.lr": {"distribution": "uniform", "low": 0.1, "high": 0.1}}), "space['optimizer.lr'].low", "low (0.1) must be less than high (0.1)", id="distribution-low-ge-high"),
    pytest.param("/sweeps", sweep(method="random", space={"optimizer.lr": LOG_UNIFORM}), "space['optimizer.lr'].low", "log_uniform needs low > 0", id="log-uniform-low-zero"),
    pytest.param("/sweeps", sweep(space={"optimizer.lr": {**LOG_UNIFORM, "low": 1e-4}}), "space['optimizer.lr']", "method 'grid' cannot enumerate", id="distribution-under-grid"),
    pytest.param("/sweeps", sweep(space={"optimizer.lr": [0.1, -1]}), "space", "combination {'optimizer.lr': -1} gives an invalid trial", id="invalid-combination"),
    pytest.param("/sweeps", sweep(method="single", space={"seed": [1]}), "method", "takes no space", id="single-with-space"),
    pytest.param("/sweeps", sweep(name="lr\x00sweep"), "name", "control characters", id="nul-in-name"),
    pytest.param("/sweeps", sweep(space={"seed": ["a\x00"]}), "space.seed.values", "control characters", id="nul-in-space-value"),
    pytest.param("/jobs", [job()], "", "object", id="array-not-object"),
    pytest.param("/sweeps", [sweep()], "", "object", id="sweep-array-not-object"),
    pytest.param("/jobs", {}, "task", "Field required", id="missing-task"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "field", "message"), INVALID_SPECS)
def test_invalid_spec_is_422_naming_field_and_rule(
    client: TestClient, path: str, body: Any, field: str, message: str
) -> None:
    stored = created(client.post("/jobs", json=job()))
    response = client.post(path, json=body)
    assert_invalid(response, field, message)
    assert response.json()["detail"][0].get("in", "body") == "body"
    assert sweep_total(client) == 1
    assert client.get(f"/sweeps/{stored['id']}").json() == stored


@pytest.mark.parametrize("path", ["/jobs", "/sweeps"])
def test_malformed_json_is_422_for_the_whole_body(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=b'{"task": "digits",', headers={"content-type": "application/json"}
    )
    # The whole document is at fault: no field of it (a character offset is not a field).
    assert_invalid(response, "", "JSON")
    assert sweep_total(client) == 0


def test_grid_over_the_configured_limit_is_422(
    store: Store, client: TestClient, tmp_path: Path
) -> None:
    small = create_app(Settings(data_dir=tmp_path, max_trials_per_sweep=10), store)
    with TestClient(small, raise_server_exceptions=False) as limited:
        limited.headers["Authorization"] = client.headers["Authorization"]
        space = {"optimizer.lr": [0.1, 0.01, 0.001], "seed": [1, 2, 3, 4]}
        response = limited.post("/sweeps", json=sweep(space=space))
        assert_invalid(response, "space", "grid has 12 combinations; the limit is 10")
        # max_trials does not lift the cap: the whole grid must fit.
        response = limited.post("/sweeps", json=sweep(space=space, max_trials=2))
        assert_invalid(response, "space", "the limit is 10")
        ok = limited.post("/sweeps", json=sweep(space={"seed": list(range(10))}))
        assert created(ok)["trial_counts"] == {"queued": 10}
    assert sweep_total(client) == 1


def test_many_bad_requests_store_nothing(client: TestClient) -> None:
    before = client.get("/sweeps").json()
    for param in INVALID_SPECS:
        path, body, _, _ = param.values
        assert client.post(path, json=body).status_code == 422, param.id
    assert client.get("/sweeps").json() == before
