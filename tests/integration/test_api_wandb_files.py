"""The W&B file suite (tests/data/wandb_sweeps) through POST /sweeps as YAML: each valid
file is a 201 with the trials and warnings it should give, each invalid one a 422 at its
place in the file that stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.api import assert_invalid, created, sweep_total, trials_of
from tests.support.wandb_files import INVALID, VALID, wandb_file

YAML = {"content-type": "application/yaml"}


def post(client: TestClient, kind: str, name: str) -> Any:
    return client.post("/sweeps", content=wandb_file(kind, name), headers=YAML)


def without_nulls(param: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in param.items() if value is not None}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_file_is_accepted_with_its_trials_and_warnings(client: TestClient, name: str) -> None:
    expected = VALID[name]
    body = created(post(client, "valid", name))
    assert body["method"] == expected.method
    stored = {path: without_nulls(param) for path, param in body["spec"]["space"].items()}
    assert stored == expected.space
    assert [w.split(": ")[0] for w in body["warnings"]] == list(expected.warnings)
    assert all(isinstance(w, str) and len(w) > 20 for w in body["warnings"])
    trials = trials_of(client, body["id"])
    if expected.trials is not None:  # a grid queues every trial now
        assert body["trial_counts"] == {"queued": expected.trials}
        assert all(set(t["params"]) == set(expected.space) for t in trials)
    else:  # random and bayes ask for each trial as room frees
        assert trials == []
    assert body["status"] == "running" and body["status_reason"] is None


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_file_is_422_naming_the_problem(client: TestClient, name: str) -> None:
    field, fragment = INVALID[name]
    assert_invalid(post(client, "invalid", name), field, fragment)
    assert sweep_total(client) == 0


def test_native_json_answers_with_no_warnings(client: TestClient) -> None:
    native = {"base": {"task": "digits"}, "space": {"optimizer.lr": [0.1, 0.01]}}
    assert created(client.post("/sweeps", json=native))["warnings"] == []
