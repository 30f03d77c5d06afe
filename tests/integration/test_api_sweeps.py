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
from tests.support.api import (
    TASK,
    assert_invalid,
    created,
    job,
    sweep,
    sweep_total,
    trials_of,
)

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
    assert body.pop("warnings") == []  # the submission's answer alone has them
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


def test_max_trials_beyond_int64_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/sweeps", json=sweep(max_trials=2**64))
    assert_invalid(response, "max_trials", "")
    assert sweep_total(client) == 0


def test_max_trials_over_int32_is_kept_or_rejected_by_name(client: TestClient) -> None:
    # Either answer is fine, on both backends alike; an anonymous store error is not.
    response = client.post("/sweeps", json=sweep(max_trials=2**31))
    if response.status_code == 201:
        assert response.json()["max_trials"] == 2**31
    else:
        assert_invalid(response, "max_trials", "")


# -- methods and registries ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_sampling_methods_queue_no_trial_until_the_scheduler_asks(
    client: TestClient, settings: Settings, method: str
) -> None:
    space = {"optimizer.lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}}
    metric = {"name": "val_loss", "goal": "minimize"}
    body = created(client.post("/sweeps", json=sweep(method=method, space=space, metric=metric)))
    assert body["method"] == method
    # Unset max_trials: the sweep runs until the server's per-sweep limit.
    assert body["max_trials"] == settings.max_trials_per_sweep
    assert trials_of(client, body["id"]) == []


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


# -- checks at submission, warnings ------------------------------------------------------


def test_a_grid_switching_optimizers_builds_every_trial(client: TestClient) -> None:
    space = {"optimizer.name": ["sgd", "adam"], "optimizer.momentum": [0.0, 0.9]}
    body = created(client.post("/sweeps", json=sweep(space=space)))
    assert body["trial_counts"] == {"queued": 4}
    assert len(body["warnings"]) == 1 and "with adam run without it" in body["warnings"][0]
    specs = [t["spec"]["optimizer"] for t in trials_of(client, body["id"])]
    assert [o.get("momentum") for o in specs] == [0.0, 0.9, None, None]


def test_warnings_come_with_the_created_sweep(client: TestClient) -> None:
    metric = {"name": "val_accuracy", "goal": "minimize"}
    body = created(client.post("/sweeps", json=sweep(space={"seed": [1, 2]}, metric=metric)))
    assert body["warnings"] == [
        "metric.goal: minimizing val_accuracy, where higher is better; did you mean maximize?"
    ]
    assert body["trial_counts"] == {"queued": 2}  # stored all the same
    assert "warnings" not in client.get(f"/sweeps/{body['id']}").json()
    assert created(client.post("/sweeps", json=sweep()))["warnings"] == []


# -- invalid specs ------------------------------------------------------------------------

LOG_UNIFORM = {"distribution": "log_uniform", "low": 0, "high": 0.1}
UNIFORM_EMPTY = {"distribution": "uniform", "low": 0.1, "high": 0.1}
LR = {"distribution": "log_uniform", "low": 1e-4, "high": 1.0}
METRIC = {"name": "val_loss", "goal": "minimize"}


def bad(case_id: str, path: str, body: Any, field: str, message: str) -> Any:
    return pytest.param(path, body, field, message, id=case_id)


def bad_job(case_id: str, field: str, message: str, **overrides: Any) -> Any:
    return bad(case_id, "/jobs", job(**overrides), field, message)


def bad_sweep(case_id: str, field: str, message: str, **overrides: Any) -> Any:
    return bad(case_id, "/sweeps", sweep(**overrides), field, message)


def sgd(**params: Any) -> dict[str, Any]:
    return {"name": "sgd", **params}


# (path, body, exact field, message substring)
INVALID_SPECS = [
    bad_job("lr-zero", "optimizer.lr", "greater than 0", optimizer=sgd(lr=0)),
    bad_job("lr-negative", "optimizer.lr", "greater than 0", optimizer=sgd(lr=-0.1)),
    bad_job("lr-nan-string", "optimizer.lr", "valid number", optimizer=sgd(lr="NaN")),
    bad_job("lr-inf-string", "optimizer.lr", "valid number", optimizer=sgd(lr="Infinity")),
    bad_job(
        "unknown-optimizer",
        "optimizer.name",
        "unknown optimizer 'adamax'; valid names: adagrad, adam, adamw, lbfgs, rmsprop, sgd",
        optimizer={"name": "adamax"},
    ),
    bad_job("unknown-optimizer-bare", "optimizer.name", "valid names: ada", optimizer="adamax"),
    bad_job(
        "momentum-with-adam",
        "optimizer.momentum",
        "unknown key 'momentum' for optimizer 'adam'; valid keys: amsgrad, betas",
        optimizer={"name": "adam", "momentum": 0.9},
    ),
    bad_job("unknown-top-level-key", "learning_rate", "valid keys: batch_size", learning_rate=0.1),
    bad_sweep("unknown-sweep-key", "spaces", "unknown key 'spaces' for sweep spec", spaces={}),
    bad_job(
        "unknown-nested-key", "regularization.l3", "valid keys: dropout", regularization={"l3": 1}
    ),
    bad_job("unknown-task-key", "task.layers", "for task 'digits'", task={**TASK, "layers": 3}),
    bad_job(
        "batch-size-zero",
        "batch_size",
        'integer from 1 to 10000000 or "full" (got 0)',
        batch_size=0,
    ),
    bad_job("batch-size-half", "batch_size", "(got 'half')", batch_size="half"),
    bad_job("batch-size-bool", "batch_size", "an integer from 1", batch_size=True),
    bad_job(
        "cyclic-max-le-base",
        "schedule.max_lr",
        "max_lr (0.1) must be greater than base_lr (0.1)",
        schedule={"name": "cyclic", "base_lr": 0.1, "max_lr": 0.1},
    ),
    bad_job(
        "cyclic-max-below-optimizer-lr",
        "schedule.max_lr",
        "greater than base_lr (0.01, the optimizer.lr since schedule.base_lr is unset)",
        schedule={"name": "cyclic", "max_lr": 0.005},
    ),
    bad_job(
        "nesterov-without-momentum",
        "optimizer.nesterov",
        "nesterov requires momentum > 0",
        optimizer=sgd(nesterov=True),
    ),
    bad_job(
        "multistep-decreasing",
        "schedule.milestones",
        "strictly increasing (got 50 after 100)",
        schedule={"name": "multistep", "milestones": [100, 50]},
    ),
    bad_job(
        "multistep-repeated",
        "schedule.milestones",
        "strictly increasing",
        schedule={"name": "multistep", "milestones": [50, 50]},
    ),
    bad_job(
        "both-grad-clips",
        "regularization.grad_clip_value",
        "grad_clip_norm and grad_clip_value are mutually exclusive",
        regularization={"grad_clip_norm": 1.0, "grad_clip_value": 0.5},
    ),
    bad_job(
        "l2-and-weight-decay",
        "regularization.l2",
        "set weight decay once",
        regularization={"l2": 1e-4},
        optimizer=sgd(weight_decay=1e-4),
    ),
    bad_job(
        "budget-both",
        "budget",
        "exactly one of epochs or max_steps (got both)",
        budget={"epochs": 3, "max_steps": 100},
    ),
    bad_job("budget-neither", "budget", "(got neither)", budget={}),
    bad_job("gpus-1.5", "resources.gpus", "whole number (got 1.5)", resources={"gpus": 1.5}),
    bad_sweep(
        "unknown-space-path",
        "space['optimizer.learning_rate']",
        "unknown path 'optimizer.learning_rate'; valid keys of optimizer",
        space={"optimizer.learning_rate": [0.1]},
    ),
    bad_sweep("unknown-space-root", "space.epochs", "valid top-level", space={"epochs": [1]}),
    bad_sweep(
        "distribution-low-ge-high",
        "space['optimizer.lr'].low",
        "low (0.1) must be less than high (0.1)",
        method="random",
        space={"optimizer.lr": UNIFORM_EMPTY},
    ),
    bad_sweep(
        "log-uniform-low-zero",
        "space['optimizer.lr'].low",
        "log_uniform needs low > 0",
        method="random",
        space={"optimizer.lr": LOG_UNIFORM},
    ),
    bad_sweep(
        "distribution-under-grid",
        "space['optimizer.lr']",
        "method 'grid' cannot enumerate",
        space={"optimizer.lr": {**LOG_UNIFORM, "low": 1e-4}},
    ),
    bad_sweep(
        "invalid-combination",
        "space",
        "combination {'optimizer.lr': -1} gives an invalid trial",
        space={"optimizer.lr": [0.1, -1]},
    ),
    bad_sweep(
        "single-with-space", "method", "takes no space", method="single", space={"seed": [1]}
    ),
    bad_sweep("nul-in-name", "name", "control characters", name="lr\x00sweep"),
    bad_sweep("nul-in-value", "space.seed.values", "control characters", space={"seed": ["a\x00"]}),
    # -- a sampled space is built at submission: no 201 whose trials then all fail
    bad_sweep(
        "random-schedule-field-one-kind-refuses",
        "space['schedule.gamma']",
        "with schedule.name='step', schedule.gamma=1.5 the trial is invalid: schedule.gamma: "
        "Input should be less than or equal to 1",
        method="random",
        space={
            "schedule.name": ["cosine", "step"],
            "schedule.gamma": {"value": 1.5},
            "optimizer.lr": LR,
        },
    ),
    bad_sweep(
        "bayes-lr-uniform-from-zero",
        "space['optimizer.lr']",
        "uniform from 0 to 0.1 reaches 0.0: optimizer.lr: Input should be greater than 0",
        method="bayes",
        metric=METRIC,
        space={"optimizer.lr": {"distribution": "uniform", "low": 0, "high": 0.1}},
    ),
    bad_sweep(
        "random-momentum-to-1.5",
        "space['optimizer.momentum']",
        "uniform from 0.5 to 1.5 reaches 1.0: optimizer.momentum: Input should be less than 1",
        method="random",
        space={"optimizer.momentum": {"distribution": "uniform", "low": 0.5, "high": 1.5}},
    ),
    bad_sweep(
        "random-batch-size-fractions",
        "space.batch_size",
        "int_uniform, or an integer q, draws integers",
        method="random",
        space={"batch_size": {"distribution": "uniform", "low": 16, "high": 64}},
    ),
    bad_sweep(
        "momentum-no-chosen-optimizer-has",
        "space['optimizer.momentum']",
        "none of the optimizers this sweep picks (adam, adamw) has 'momentum'",
        method="random",
        space={"optimizer.name": ["adam", "adamw"], "optimizer.momentum": [0.9]},
    ),
    # -- the metric
    bad_sweep(
        "bayes-without-metric",
        "metric",
        "name the metric: method bayes models the metric",
        method="bayes",
        space={"optimizer.lr": LR},
    ),
    bad_sweep(
        "asha-without-metric",
        "metric",
        "early_stop (asha) stops trials by the metric",
        method="random",
        space={"optimizer.lr": LR},
        early_stop={"pruner": "asha"},
    ),
    bad_sweep(
        "hyperband-without-metric",
        "metric",
        "early_stop (hyperband) stops trials by the metric",
        space={"optimizer.lr": [0.1, 0.01]},
        early_stop={"pruner": "hyperband", "min_resource": 1},
    ),
    bad_sweep(
        "metric-val-f1",
        "metric.name",
        "task 'digits' does not log 'val_f1'; it logs val_loss, val_accuracy at each evaluation",
        metric={"name": "val_f1", "goal": "maximize"},
    ),
    bad_sweep(
        "metric-val-top1",
        "metric.name",
        "does not log 'val_top1'",
        method="random",
        space={"optimizer.lr": LR},
        metric={"name": "val_top1", "goal": "maximize"},
    ),
    # -- numbers are numbers, and sizes stay below what any run needs
    bad_job("lr-true", "optimizer.lr", "valid number", optimizer=sgd(lr=True)),
    bad_job("lr-numeric-string", "optimizer.lr", "valid number", optimizer=sgd(lr="0.1")),
    bad_job("epochs-float", "budget.epochs", "valid integer", budget={"epochs": 10.0}),
    bad_job(
        "max-steps-2-to-70",
        "budget.max_steps",
        "less than or equal to 1000000000",
        budget={"max_steps": 2**70},
    ),
    bad_job("batch-size-1e12", "batch_size", 'from 1 to 10000000 or "full"', batch_size=1e12),
    bad_job("cpus-string", "resources.cpus", "valid number", resources={"cpus": "2"}),
    bad_sweep(
        "sweep-base-lr-true", "base.optimizer.lr", "valid number", base=job(optimizer=sgd(lr=True))
    ),
    bad_sweep("max-concurrent-string", "max_concurrent", "valid integer", max_concurrent="4"),
    bad("array-not-object", "/jobs", [job()], "", "object"),
    bad("sweep-array-not-object", "/sweeps", [sweep()], "", "object"),
    bad("missing-task", "/jobs", {}, "task", "Field required"),
]


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
    created(client.post("/sweeps", json=sweep(space={"seed": [1, 2]})))
    before = client.get("/sweeps").json()
    for param in INVALID_SPECS:
        path, body, _, _ = param.values
        assert client.post(path, json=body).status_code == 422, param.id
    assert client.get("/sweeps").json() == before
