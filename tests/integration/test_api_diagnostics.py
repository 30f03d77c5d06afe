"""The trial spec's `diagnostics` through the HTTP API: set on a job, swept by dotted path,
refused with a 422 naming the field and the rule, and listed in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_invalid, created, job, sweep, trials_of


def test_a_job_keeps_its_sharpness_settings_and_defaults_them_off(client: TestClient) -> None:
    plain = created(client.post("/jobs", json=job()))
    measured = created(
        client.post("/jobs", json=job(diagnostics={"sharpness_every": 25, "sharpness_iters": 8}))
    )
    (plain_trial,) = trials_of(client, plain["id"])
    (measured_trial,) = trials_of(client, measured["id"])
    assert plain_trial["spec"]["diagnostics"] == {"sharpness_every": None, "sharpness_iters": 20}
    assert measured_trial["spec"]["diagnostics"] == {"sharpness_every": 25, "sharpness_iters": 8}


def test_a_sweep_sets_sharpness_every_by_its_dotted_path(client: TestClient) -> None:
    body = created(
        client.post(
            "/sweeps",
            json=sweep(space={"diagnostics.sharpness_every": [10, 50], "optimizer.lr": [0.1, 1]}),
        )
    )
    trials = trials_of(client, body["id"])
    assert [t["spec"]["diagnostics"]["sharpness_every"] for t in trials] == [10, 10, 50, 50]
    assert {t["spec"]["diagnostics"]["sharpness_iters"] for t in trials} == {20}


EVERY_RULE = "must be an integer from 1 to 1000000000"
BAD_DIAGNOSTICS = [
    ({"sharpness_every": 0}, "diagnostics.sharpness_every", EVERY_RULE + " (got 0)"),
    ({"sharpness_every": -5}, "diagnostics.sharpness_every", EVERY_RULE + " (got -5)"),
    ({"sharpness_every": 2.5}, "diagnostics.sharpness_every", EVERY_RULE + " (got 2.5)"),
    ({"sharpness_every": True}, "diagnostics.sharpness_every", EVERY_RULE + " (got True)"),
    ({"sharpness_every": "10"}, "diagnostics.sharpness_every", EVERY_RULE + " (got '10')"),
    ({"sharpness_iters": 0}, "diagnostics.sharpness_iters", "integer from 1 to 200 (got 0)"),
    ({"sharpness_iters": 500}, "diagnostics.sharpness_iters", "integer from 1 to 200 (got 500)"),
    ({"sharpness": 10}, "diagnostics.sharpness", "valid keys: sharpness_every, sharpness_iters"),
]


@pytest.mark.parametrize(("diagnostics", "field", "message"), BAD_DIAGNOSTICS)
def test_invalid_diagnostics_are_422_naming_the_field_and_rule(
    client: TestClient, diagnostics: dict[str, Any], field: str, message: str
) -> None:
    assert_invalid(client.post("/jobs", json=job(diagnostics=diagnostics)), field, message)
    base = job(diagnostics=diagnostics)
    assert_invalid(client.post("/sweeps", json=sweep(base=base)), f"base.{field}", message)
    assert client.get("/sweeps").json()["total"] == 0


def test_an_invalid_swept_value_is_422_naming_the_combination(client: TestClient) -> None:
    response = client.post("/sweeps", json=sweep(space={"diagnostics.sharpness_every": [10, 0]}))
    assert_invalid(response, "space", "diagnostics.sharpness_every: " + EVERY_RULE)


def test_an_unknown_diagnostics_path_in_a_sweep_is_422_listing_the_valid_keys(
    client: TestClient,
) -> None:
    response = client.post("/sweeps", json=sweep(space={"diagnostics.every": [10]}))
    assert_invalid(response, "space['diagnostics.every']", "sharpness_every, sharpness_iters")


def test_the_openapi_schema_describes_the_diagnostics(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Diagnostics"]
    every = schema["properties"]["sharpness_every"]
    (integer,) = (s for s in every["anyOf"] if s["type"] == "integer")
    assert (integer["minimum"], integer["maximum"]) == (1, 10**9)
    assert "top Hessian eigenvalue" in every["description"]
    iters = schema["properties"]["sharpness_iters"]
    assert (iters["minimum"], iters["maximum"], iters["default"]) == (1, 200, 20)
