"""Authentication, project scoping and tokens, through the HTTP API on both backends."""

from __future__ import annotations

import re
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from services.settings import Settings

PUBLIC_PATHS = {"/health", "/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"}
GRID = {"base": {"task": "digits"}, "space": {"optimizer.lr": [0.1, 0.01]}}
POINTS = {"points": [{"name": "train_loss", "step": 0, "value": 1.0, "time": 1.0}]}


def http_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every HTTP route, HEAD/OPTIONS aside."""
    # Recent FastAPI nests included routers; iter_route_contexts flattens them.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = flatten(app.routes) if flatten else app.routes
    return sorted(
        (method, route.path)
        for route in routes
        for method in (getattr(route, "methods", None) or ())
        if method not in ("HEAD", "OPTIONS")
    )


PROTECTED = [(m, p) for m, p in http_routes(create_app(Settings())) if p not in PUBLIC_PATHS]


def concrete(path: str) -> str:
    """A template with every {param} set to 1."""
    return re.sub(r"\{[^}]+\}", "1", path)


def anonymous(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def bearer(app: FastAPI, secret: str) -> TestClient:
    client = anonymous(app)
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def messages(response: Any) -> str:
    return " | ".join(item["message"] for item in response.json()["detail"])


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert response.json()["detail"][0]["message"]


def issue_member(client: TestClient, name: str = "member", role: str = "member") -> dict[str, Any]:
    response = client.post("/tokens", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


# -- every route needs a token ------------------------------------------------------------


def test_route_enumeration_covers_the_openapi_schema(app: FastAPI) -> None:
    schema_routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert len(PROTECTED) >= 15
    assert schema_routes - {("GET", "/health")} <= set(PROTECTED)
    assert {r for r in http_routes(app) if r[1] not in PUBLIC_PATHS} == set(PROTECTED)


def test_health_needs_no_token(app: FastAPI, store: Any) -> None:
    with anonymous(app) as client:
        response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == store.db.dialect


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_route_without_token_is_401(app: FastAPI, method: str, path: str) -> None:
    with anonymous(app) as client:
        response = client.request(method, concrete(path))
    assert_unauthorized(response)
    assert "bearer token" in messages(response)


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_route_with_bad_token_is_401(app: FastAPI, method: str, path: str) -> None:
    with bearer(app, "lrl_not-a-real-token") as client:
        response = client.request(method, concrete(path))
    assert_unauthorized(response)
    assert "unknown or revoked token" in messages(response)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "lrl_abc"])
def test_malformed_authorization_header_is_401(app: FastAPI, header: str) -> None:
    with anonymous(app) as client:
        response = client.get("/sweeps", headers={"Authorization": header})
    assert_unauthorized(response)


# -- projects never see each other --------------------------------------------------------


# Every route that names an object by id is walked with alpha's ids by beta's tokens. A
# route with a body gets one that is valid apart from the id, so that its 404 can only
# come from scoping (an invalid body would answer 422 first).
ID_ROUTES = [(m, p) for m, p in PROTECTED if "{" in p]
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/trials/{trial_id}/metrics"): {"points": [{"name": "x", "step": 0, "value": 9.0}]},
    ("POST", "/runs/{run_id}/finish"): {"status": "failed"},
}
MARKER = "alpha-private-7f3a"  # in every name alpha gives, to spot a leak in any answer


@pytest.fixture
def alpha_world(client: TestClient) -> dict[str, int]:
    """One of each object of alpha that a route names by id: a grid sweep with two queued
    trials (the first with a metric point), an external run, a range test and a token."""
    sweep = client.post("/sweeps", json={**GRID, "name": f"{MARKER} sweep"})
    assert sweep.status_code == 201, sweep.text
    sweep_id = sweep.json()["id"]
    trials = client.get(f"/sweeps/{sweep_id}/trials").json()["items"]
    trial_id = trials[0]["id"]
    ingest = client.post(f"/trials/{trial_id}/metrics", json=POINTS)
    assert ingest.status_code == 200, ingest.text
    run = client.post("/runs", json={"name": f"{MARKER} run"})
    assert run.status_code == 201, run.text
    range_test = client.post("/lr-find", json={"name": f"{MARKER} lr", "base": {"task": "digits"}})
    assert range_test.status_code == 201, range_test.text
    token = issue_member(client, f"{MARKER} token")
    return {
        "sweep_id": sweep_id,
        "trial_id": trial_id,
        "run_id": run.json()["id"],
        "lr_find_id": range_test.json()["sweep_id"],
        "token_id": token["token"]["id"],
    }


def ids_for(path: str, world: dict[str, int]) -> dict[str, int]:
    # /lr-find/{sweep_id} names a range test: alpha's own, so only scoping can refuse it.
    return {**world, "sweep_id": world["lr_find_id"]} if path.startswith("/lr-find") else world


def snapshot(client: TestClient, ids: dict[str, int]) -> dict[str, Any]:
    """Everything alpha can read about its objects, to compare before and after."""
    sweep, trial, run = ids["sweep_id"], ids["trial_id"], ids["run_id"]
    reads = {
        "sweep": f"/sweeps/{sweep}",
        "trials": f"/sweeps/{sweep}/trials",
        "trial": f"/trials/{trial}",
        "events": f"/trials/{trial}/events",
        "metrics": f"/trials/{trial}/metrics",
        "names": f"/trials/{trial}/metric-names",
        "sweeps": "/sweeps",
        "run": f"/runs/{run}",
        "tokens": "/tokens",
    }
    out = {}
    for key, path in reads.items():
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        out[key] = response.json()
    return out


def test_every_route_with_a_body_and_an_id_has_a_valid_body() -> None:
    with_body = {
        (method.upper(), path)
        for path, operations in create_app(Settings()).openapi()["paths"].items()
        for method, operation in operations.items()
        if "{" in path and "requestBody" in operation
    }
    assert with_body <= set(BODIES), f"add a body for {sorted(with_body - set(BODIES))}"
    assert len(ID_ROUTES) >= 20  # the walk cannot silently shrink to nothing


def secret_of(client: TestClient, role: str) -> str:
    """A token of `client`'s project in `role`: its own admin token, or a new one."""
    if role == "admin":
        return client.headers["Authorization"].removeprefix("Bearer ")
    return str(issue_member(client, f"a {role}", role)["secret"])


ROLES = ["admin", "member", "viewer"]
WRITE_ROUTES = [(m, p) for m, p in PROTECTED if m not in ("GET", "HEAD")]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), ID_ROUTES, ids=[f"{m} {p}" for m, p in ID_ROUTES])
def test_another_projects_ids_are_not_found_and_change_nothing(
    app: FastAPI,
    client: TestClient,
    other_client: TestClient,
    alpha_world: dict[str, int],
    method: str,
    path: str,
    role: str,
) -> None:
    secret = secret_of(other_client, role)
    before = snapshot(client, alpha_world)
    url = path.format(**ids_for(path, alpha_world))
    with bearer(app, secret) as beta:
        response = beta.request(method, url, json=BODIES.get((method, path)))
    if role == "viewer" and method != "GET":  # refused for its role before any lookup
        assert response.status_code == 403, response.text
    else:
        assert response.status_code == 404, response.text
        assert "not found" in messages(response)
    assert MARKER not in response.text
    assert snapshot(client, alpha_world) == before


@pytest.mark.parametrize(
    ("method", "path"), WRITE_ROUTES, ids=[f"{m} {p}" for m, p in WRITE_ROUTES]
)
def test_a_viewer_changes_nothing_even_in_its_own_project(
    app: FastAPI, client: TestClient, alpha_world: dict[str, int], method: str, path: str
) -> None:
    secret = secret_of(client, "viewer")
    before = snapshot(client, alpha_world)
    url = path.format(**ids_for(path, alpha_world))
    with bearer(app, secret) as viewer:
        response = viewer.request(method, url, json=BODIES.get((method, path), {}))
    assert response.status_code == 403, response.text
    assert "viewer token" in messages(response)
    assert snapshot(client, alpha_world) == before


def test_a_viewer_reads_its_project(
    app: FastAPI, client: TestClient, alpha_world: dict[str, int]
) -> None:
    issued = issue_member(client, "dashboard", "viewer")
    assert issued["token"]["role"] == "viewer"
    with bearer(app, issued["secret"]) as viewer:
        assert snapshot(viewer, alpha_world) == snapshot(client, alpha_world)
    roles = {t["name"]: t["role"] for t in client.get("/tokens").json()}
    assert roles["dashboard"] == "viewer" and roles["test"] == "admin"


LIST_ROUTES = [p for m, p in PROTECTED if m == "GET" and "{" not in p]
QUERIES = {"/recommendations": {"task": "digits", "optimizer": "sgd"}}  # required there


@pytest.mark.parametrize("path", LIST_ROUTES)
def test_no_list_shows_another_projects_objects(
    other_client: TestClient, alpha_world: dict[str, int], path: str
) -> None:
    response = other_client.get(path, params=QUERIES.get(path))
    assert response.status_code == 200, response.text
    assert MARKER not in response.text


def test_other_project_lists_none_of_alphas_sweeps(
    other_client: TestClient, alpha_world: dict[str, int]
) -> None:
    page = other_client.get("/sweeps").json()
    assert page["items"] == []
    assert page["total"] == 0


def test_project_is_the_tokens_own(client: TestClient, other_client: TestClient) -> None:
    assert client.get("/project").json()["name"] == "alpha"
    assert other_client.get("/project").json()["name"] == "beta"


def test_other_project_cannot_revoke_alphas_token(
    client: TestClient, other_client: TestClient
) -> None:
    issued = issue_member(client)
    response = other_client.delete(f"/tokens/{issued['token']['id']}")
    assert response.status_code == 404, response.text
    assert issued["token"]["id"] in [t["id"] for t in client.get("/tokens").json()]


# -- tokens -------------------------------------------------------------------------------


def test_new_token_secret_is_returned_once_and_works(app: FastAPI, client: TestClient) -> None:
    issued = issue_member(client, "ci")
    token, secret = issued["token"], issued["secret"]
    assert secret.startswith("lrl_") and len(secret) > 20
    assert token["name"] == "ci"
    assert token["is_admin"] is False
    assert secret.startswith(token["prefix"]) and token["prefix"] != secret
    with bearer(app, secret) as member:
        assert member.get("/project").json()["name"] == "alpha"


def test_token_listing_never_shows_secrets(client: TestClient) -> None:
    issued = issue_member(client)
    own_secret = client.headers["Authorization"].removeprefix("Bearer ")
    response = client.get("/tokens")
    assert response.status_code == 200
    listed = response.json()
    assert issued["token"]["id"] in [t["id"] for t in listed]
    assert all("secret" not in t for t in listed)
    assert issued["secret"] not in response.text
    assert own_secret not in response.text


def test_revoked_token_is_401_and_no_longer_listed(app: FastAPI, client: TestClient) -> None:
    issued = issue_member(client)
    token_id = issued["token"]["id"]
    with bearer(app, issued["secret"]) as member:
        assert member.get("/sweeps").status_code == 200
        revoke = client.delete(f"/tokens/{token_id}")
        assert revoke.status_code == 204, revoke.text
        assert_unauthorized(member.get("/sweeps"))
    assert token_id not in [t["id"] for t in client.get("/tokens").json()]
    again = client.delete(f"/tokens/{token_id}")
    assert again.status_code == 404, again.text


def test_member_token_cannot_manage_projects(app: FastAPI, client: TestClient) -> None:
    issued = issue_member(client)
    with bearer(app, issued["secret"]) as member:
        assert member.get("/sweeps").status_code == 200
        for response in (member.get("/projects"), member.post("/projects", json={"name": "x"})):
            assert response.status_code == 403, response.text
            assert "admin" in messages(response)
    names = [p["name"] for p in client.get("/projects").json()]
    assert "x" not in names


def test_admin_creates_a_project_whose_token_sees_no_sweeps(
    app: FastAPI, client: TestClient, alpha_world: dict[str, int]
) -> None:
    response = client.post("/projects", json={"name": "gamma"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["project"]["name"] == "gamma"
    assert created["token"]["token"]["is_admin"] is True
    with bearer(app, created["token"]["secret"]) as gamma:
        assert gamma.get("/project").json()["id"] == created["project"]["id"]
        page = gamma.get("/sweeps").json()
        assert (page["items"], page["total"]) == ([], 0)
        assert gamma.get(f"/sweeps/{alpha_world['sweep_id']}").status_code == 404
    assert "gamma" in [p["name"] for p in client.get("/projects").json()]


def test_duplicate_project_name_is_409(client: TestClient) -> None:
    response = client.post("/projects", json={"name": "alpha"})
    assert response.status_code == 409, response.text
    assert response.json()["detail"][0]["field"] == "name"
    assert [p["name"] for p in client.get("/projects").json()].count("alpha") == 1
