"""A use case that spans repositories commits once: a failure between its steps leaves
nothing half-made, and a retry succeeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.store import Store


class Injected(RuntimeError):
    """The failure a test injects between two steps of a use case."""


def fail_on_call(n: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, except that its n-th call (1-based) raises Injected."""
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == n:
            raise Injected(f"injected failure on call {n}")
        return real(*args, **kwargs)

    return wrapper


def test_inside_a_unit_of_work_nothing_is_kept_when_a_step_fails(store: Store) -> None:
    with pytest.raises(Injected), store.unit_of_work():
        project = store.projects.create("half-made")
        store.projects.issue_token(project.id, "first")
        raise Injected("after two writes")

    assert store.projects.get_by_name("half-made") is None


def test_nested_units_of_work_commit_once_with_the_outer_one(store: Store) -> None:
    with pytest.raises(Injected), store.unit_of_work():
        with store.unit_of_work():
            store.projects.create("inner")
        assert store.projects.get_by_name("inner") is not None  # seen inside the outer one
        raise Injected("the outer one fails")

    assert store.projects.get_by_name("inner") is None


def test_a_project_whose_token_fails_is_not_created_and_the_retry_succeeds(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.projects, "issue_token", fail_on_call(1, store.projects.issue_token))

    failed = client.post("/projects", json={"name": "gamma"})

    assert failed.status_code == 500
    assert store.projects.get_by_name("gamma") is None
    retried = client.post("/projects", json={"name": "gamma"})
    assert retried.status_code == 201, retried.text


def test_an_lr_auto_sweep_and_its_range_test_are_stored_together_or_not_at_all(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = client.get("/project").json()["id"]
    # Call 1 stores the range test, call 2 the sweep that waits for it.
    monkeypatch.setattr(store.sweeps, "create", fail_on_call(2, store.sweeps.create))
    body = {
        "base": {"task": "digits", "optimizer": {"name": "adam"}, "budget": {"max_steps": 20}},
        "space": {"optimizer.lr": "auto"},
    }

    assert client.post("/sweeps", json=body).status_code == 500

    assert store.sweeps.list(project_id, limit=10, offset=0).total == 0
    assert client.post("/sweeps", json=body).status_code == 201
    assert store.sweeps.list(project_id, limit=10, offset=0).total == 2  # the test and its sweep
