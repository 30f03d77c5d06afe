"""Stored specs are decoded once, by the domain: a spec that no longer decodes is the
server's error (a logged 500 naming the object), never the client's 422."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.schemas import TokenOut
from services.domain.stored_specs import StoredSpecError, decode_sweep_spec
from services.domain.submissions import NewSweep, NewTrial
from services.specs import SweepSpec
from services.specs.trial_builder import apply_params
from services.store import Store

# What a trial of a task plug-in that has since been uninstalled looks like in the store.
ORPHAN_SPEC = {"task": {"name": "uninstalled_plugin_task"}, "optimizer": {"name": "sgd"}}


def _orphan_trial(client: TestClient, store: Store) -> int:
    project_id = client.get("/project").json()["id"]
    sweep = store.sweeps.create(
        project_id,
        NewSweep("orphan", "single", {"base": ORPHAN_SPEC}, "val_loss", "minimize", 1, 1),
        [NewTrial(params={}, spec=ORPHAN_SPEC, max_restarts=0)],
    )
    return store.trials.list(project_id, sweep.id, limit=1, offset=0).items[0].id


def test_a_trial_whose_plugin_is_gone_is_a_logged_server_error_not_a_422(
    client: TestClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    trial_id = _orphan_trial(client, store)
    points = [{"name": "train_loss", "step": i, "value": 1.0 / (i + 1)} for i in range(20)]
    assert client.post(f"/trials/{trial_id}/metrics", json={"points": points}).status_code == 200
    assert client.get(f"/trials/{trial_id}").status_code == 200  # the record still reads

    with caplog.at_level(logging.ERROR, logger="lrlab.api"):
        response = client.get(f"/trials/{trial_id}/analysis")

    assert response.status_code == 500, response.text
    message = response.json()["detail"][0]["message"]
    assert f"trial {trial_id}" in message and "uninstalled_plugin_task" in message
    assert response.json()["detail"][0]["type"] == "stored_spec"
    assert any(f"trial {trial_id}" in r.getMessage() for r in caplog.records)


def test_decoding_names_the_sweep() -> None:
    with pytest.raises(StoredSpecError, match="sweep 7 no longer decodes"):
        decode_sweep_spec({"name": "x", "base": ORPHAN_SPEC}, sweep_id=7)


def _stored_random_sweep(optimizer: dict[str, object]) -> SweepSpec:
    asked = SweepSpec.model_validate(
        {
            "name": "switch",
            "method": "random",
            "max_trials": 4,
            "base": {"task": "digits", "optimizer": optimizer},
            "space": {"optimizer.name": {"values": ["sgd", "adam"]}},
        }
    )
    # As the store keeps it and hands it back: every default written out.
    return decode_sweep_spec(asked.model_dump(mode="json"), sweep_id=1)


def test_a_stored_sweep_that_switches_optimizer_takes_the_new_ones_defaults() -> None:
    stored = _stored_random_sweep({"name": "sgd", "lr": 0.1})

    adam = apply_params(stored.base, {"optimizer.name": "adam"}).optimizer

    assert adam.name == "adam" and adam.lr == 0.1  # what the sweep set follows
    assert not hasattr(adam, "momentum")  # sgd's defaults do not


def test_a_key_the_base_set_does_not_follow_a_switch_to_an_optimizer_without_it() -> None:
    stored = _stored_random_sweep({"name": "sgd", "lr": 0.1, "momentum": 0.9})

    adam = apply_params(stored.base, {"optimizer.name": "adam"}).optimizer
    sgd = apply_params(stored.base, {"optimizer.name": "sgd"}).optimizer

    assert adam.name == "adam" and adam.lr == 0.1 and not hasattr(adam, "momentum")
    assert sgd.name == "sgd" and getattr(sgd, "momentum", None) == 0.9


def test_a_model_the_server_builds_that_fails_is_a_500_not_the_clients_422(
    app: FastAPI, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A pydantic error outside request parsing comes from data the server made: here a
    # response model built from an incomplete dict, as a route's bug would build it.
    def broken() -> TokenOut:
        return TokenOut.model_validate({"id": 1})

    app.add_api_route("/broken-model", broken, methods=["GET"])
    with caplog.at_level(logging.ERROR, logger="lrlab.api"):
        response = client.get("/broken-model")

    assert response.status_code == 500, response.text
    assert response.json()["detail"][0]["type"] == "server"
    assert any("server-side validation failed" in r.getMessage() for r in caplog.records)
    # while a client's bad body still names its field with a 422
    bad = client.post("/sweeps", json={"base": {"task": "digits", "batch_size": "huge"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "base.batch_size"
