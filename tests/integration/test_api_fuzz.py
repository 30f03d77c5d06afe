"""No request a client can send makes the server answer 5xx.

Hypothesis throws arbitrary JSON (and spec-shaped JSON, so that values get past the first
check and reach the deeper rules and the store) at every route that takes a body, random
query strings at the list and read routes, and random ids at every route that takes one.
Each answer must be below 500, and a 4xx must carry the usual `detail` list.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import assume, given
from hypothesis import strategies as st

import services.specs as specs
from tests.support.fuzz import (
    FUZZ,
    assert_handled,
    floats,
    ints,
    json_values,
    keys,
    scalars,
    text,
)

# -- what a client can send ----------------------------------------------------------------


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


SPACE_PATHS = [
    "optimizer", "optimizer.lr", "optimizer.name", "optimizer.momentum", "schedule",
    "schedule.name", "schedule.max_lr", "batch_size", "seed", "task", "task.hidden",
    "budget.epochs", "regularization.swa.swa_lr", "", ".", "optimizer..lr",
]  # fmt: skip
# Values that often pass a field's rule, so that requests also reach the store.
plausible = st.integers(1, 1000) | st.floats(1e-6, 1.0) | st.booleans()
numbers = plausible | ints | floats | scalars


def shaped(
    fields: list[str], values: st.SearchStrategy[Any], stray: bool = True
) -> st.SearchStrategy[Any]:
    """Objects made of some of `fields` (and, if `stray`, now and then another key)."""
    names = st.sampled_from(fields) | text if stray else st.sampled_from(fields)
    return st.dictionaries(names, values, max_size=4)


def registry_entry(registry: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A bare name, an entry with some of its own params, or a name with anyone's params."""

    def own_params(name: str) -> st.SearchStrategy[Any]:
        fields = sorted(set(registry[name].model_fields) - {"name"})
        return shaped(fields, numbers, stray=False).map(lambda rest: {**rest, "name": name})

    every = sorted({key for model in registry.values() for key in model.model_fields})
    anything = st.builds(lambda name, rest: {**rest, "name": name}, text, shaped(every, numbers))
    return (
        st.sampled_from(sorted(registry))
        | st.sampled_from(sorted(registry)).flatmap(own_params)
        | anything
    )


trial_specs = st.fixed_dictionaries(
    {"task": registry_entry(specs.TASKS)},
    optional={
        "optimizer": registry_entry(specs.OPTIMIZERS),
        "schedule": registry_entry(specs.SCHEDULES),
        "batch_size": numbers,
        "budget": shaped(["epochs", "max_steps"], ints),
        "regularization": shaped(sorted(specs.Regularization.model_fields), numbers),
        "resources": shaped(["cpus", "gpus"], numbers),
        "seed": ints,
        "eval_every": ints,
        "max_restarts": ints,
    },
)
space_params = (
    st.lists(scalars, max_size=3)
    | st.fixed_dictionaries({"values": st.lists(json_values, max_size=3)})
    | st.fixed_dictionaries({"value": json_values})
    | st.builds(
        lambda name, rest: {**rest, "distribution": name},
        st.sampled_from(sorted(specs.DISTRIBUTIONS)) | text,
        shaped(["low", "high", "q", "mu", "sigma"], numbers),
    )
)
sweep_specs = st.fixed_dictionaries(
    {"base": st.just({"task": "digits"}) | trial_specs},
    optional={
        "space": st.dictionaries(st.sampled_from(SPACE_PATHS) | text, space_params, max_size=3),
        "method": st.sampled_from(["grid", "random", "bayes", "single"]) | text,
        "name": text,
        "max_trials": ints,
        "max_concurrent": ints,
        "seed": ints,
        "metric": shaped(["name", "goal"], text),
    },
)
printable = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30)
point_values = floats | st.sampled_from(["NaN", "Infinity", "-Infinity"]) | numbers
points = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["train_loss", "lr", "lr/1"]) | printable | text,
        "step": st.integers(0, 10**6) | ints,
        "value": point_values,
    },
    optional={"time": st.floats(0, 2e9) | numbers},
)
# Base64 columns: packed float64s (NaN and the infinities among them), bytes of any
# length, text that is not base64 at all, and anything else.
packed_values = (
    st.lists(floats, max_size=4).map(lambda xs: b64encode(struct.pack(f"<{len(xs)}d", *xs)))
    | st.binary(max_size=40).map(b64encode)
    | text
    | json_values
)
packed_times = (
    st.lists(st.floats(0, 2e9) | floats, max_size=4).map(
        lambda xs: b64encode(struct.pack(f"<{len(xs)}d", *xs))
    )
    | packed_values
)
columns = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["train_loss", "lr"]) | printable | text,
        "steps": st.lists(st.integers(0, 10**6) | ints, max_size=4) | json_values,
    },
    optional={  # values or values_f64 (the one rule), times, times_f64 or neither
        "values": st.lists(point_values, max_size=4) | json_values,
        "times": st.lists(st.floats(0, 2e9) | numbers, max_size=4) | json_values,
        "values_f64": packed_values,
        "times_f64": packed_times,
    },
)
batches = st.fixed_dictionaries(
    {}, optional={"points": st.lists(points, max_size=4), "series": st.lists(columns, max_size=3)}
)
project_names = st.from_regex(r"[A-Za-z0-9][\w.-]{0,20}", fullmatch=True)
named = st.fixed_dictionaries({"name": project_names | printable | json_values})
query = st.lists(st.tuples(keys, scalars.map(str)), max_size=4)
ids = ints | st.sampled_from([0, -5, 2**63 - 1, 2**63, 2**70]) | text

ID_ROUTES = [
    ("GET", "/sweeps/{}"),
    ("GET", "/sweeps/{}/trials"),
    ("POST", "/sweeps/{}/cancel"),
    ("GET", "/trials/{}"),
    ("GET", "/trials/{}/events"),
    ("POST", "/trials/{}/cancel"),
    ("GET", "/trials/{}/metrics"),
    ("POST", "/trials/{}/metrics"),
    ("GET", "/trials/{}/metric-names"),
    ("DELETE", "/tokens/{}"),
]


def as_number(raw: Any) -> float | None:
    try:
        return float(str(raw))
    except ValueError:
        return None


def own_token_ids(client: TestClient) -> set[int]:
    response = client.get("/tokens")
    assert response.status_code == 200, response.text
    return {token["id"] for token in response.json()}


def dumps(value: Any) -> bytes:
    # Python's encoder writes NaN/Infinity literals, as many clients do.
    return json.dumps(value, allow_nan=True).encode()


def post_json(client: TestClient, path: str, value: Any) -> Any:
    response = client.post(path, content=dumps(value), headers={"content-type": "application/json"})
    assert_handled(response)
    return response


@pytest.fixture
def trial(client: TestClient) -> int:
    """A trial of the client's project, with a few points to read back."""
    sweep = client.post("/jobs", json={"task": "digits"})
    assert sweep.status_code == 201, sweep.text
    trial_id: int = client.get(f"/sweeps/{sweep.json()['id']}/trials").json()["items"][0]["id"]
    batch = {"points": [{"name": "train_loss", "step": s, "value": 1.0} for s in range(20)]}
    assert client.post(f"/trials/{trial_id}/metrics", json=batch).status_code == 200
    return trial_id


# -- bodies --------------------------------------------------------------------------------


@FUZZ
@given(body=sweep_specs | json_values)
def test_sweeps_body(client: TestClient, body: Any) -> None:
    response = post_json(client, "/sweeps", body)
    if response.status_code == 201:
        assert response.json()["trial_counts"]


@FUZZ
@given(body=trial_specs | json_values)
def test_jobs_body(client: TestClient, body: Any) -> None:
    response = post_json(client, "/jobs", body)
    if response.status_code == 201:
        assert response.json()["trial_counts"] == {"queued": 1}


@FUZZ
@given(body=batches | json_values)
def test_metrics_body(client: TestClient, trial: int, body: Any) -> None:
    response = post_json(client, f"/trials/{trial}/metrics", body)
    if response.status_code == 200:
        sent = len(body.get("points", [])) + sum(len(s["steps"]) for s in body.get("series", []))
        assert response.json()["accepted"] <= sent


@FUZZ
@given(body=named | json_values)
def test_tokens_body(client: TestClient, body: Any) -> None:
    response = post_json(client, "/tokens", body)
    if response.status_code == 201:
        assert response.json()["secret"].startswith("lrl_")


@FUZZ
@given(body=named | json_values)
def test_projects_body(client: TestClient, body: Any) -> None:
    response = post_json(client, "/projects", body)
    if response.status_code == 201:
        assert response.json()["project"]["name"] == body["name"]


# -- query strings and ids -----------------------------------------------------------------


def query_params(values: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Query items of the route's own parameters (often valid), or of anything at all."""
    known = st.sampled_from(sorted(values)).flatmap(
        lambda key: st.tuples(st.just(key), values[key].map(str))
    )
    return st.lists(known, max_size=4) | query


small = st.integers(0, 60)
LIST_PARAMS = {
    "limit": st.integers(1, 600) | ints | text,
    "offset": small | ints | text,
    "status": st.sampled_from(["running", "finished", "cancelled"]) | text,
}
READ_PARAMS = {
    "name": st.sampled_from(["train_loss", "val_loss", "", "\x00", "lr\x7f"]) | text,
    "start": small | ints | text,
    "end": small | ints | text,
    "max_points": st.integers(4, 30) | ints | text,
    "limit": st.integers(1, 30) | ints | text,
}


@FUZZ
@given(params=query_params(LIST_PARAMS))
def test_sweeps_query(client: TestClient, params: list[tuple[str, str]]) -> None:
    assert_handled(client.get(f"/sweeps?{urlencode(params)}"))


@FUZZ
@given(params=query_params(READ_PARAMS))
def test_metrics_query(client: TestClient, trial: int, params: list[tuple[str, str]]) -> None:
    assert_handled(client.get(f"/trials/{trial}/metrics?{urlencode(params)}"))


@FUZZ
@given(route=st.sampled_from(ID_ROUTES), raw_id=ids)
def test_path_ids(client: TestClient, trial: int, route: tuple[str, str], raw_id: Any) -> None:
    method, template = route
    if method == "DELETE":
        assume(as_number(raw_id) not in own_token_ids(client))  # keep the client's token
    path = template.format(quote(str(raw_id), safe=""))
    response = client.request(method, path)
    assert response.status_code < 500, f"{method} {path} -> {response.text[:300]}"
    if response.status_code not in (404, 405):  # a route-level miss is Starlette's answer
        assert_handled(response)


# -- edges found before, kept as plain cases so the random search still runs in full ----

DIGITS = {"task": "digits"}
EDGE_REQUESTS = [
    pytest.param("POST", "/sweeps", {"base": DIGITS, "max_trials": 2**64}, id="max-trials-2**64"),
    pytest.param("POST", "/sweeps", {"base": DIGITS, "max_trials": 2**40}, id="max-trials-2**40"),
    pytest.param("POST", "/sweeps", {"base": DIGITS, "space": {"seed": [2**70]}}, id="seed-2**70"),
    pytest.param("POST", "/jobs", {**DIGITS, "budget": {"epochs": 2**70}}, id="epochs-2**70"),
    pytest.param(
        "POST",
        "/trials/{trial}/metrics",
        {"points": [{"name": "x", "step": 0, "value": 2**70}]},
        id="value-2**70",
    ),
    pytest.param("GET", "/trials/{trial}/metrics?name=%00", None, id="read-name-nul"),
    pytest.param("GET", "/trials/{trial}/metrics?name=", None, id="read-name-empty"),
    pytest.param("GET", f"/trials/{{trial}}/metrics?start={2**63 - 1}", None, id="read-start-max"),
    pytest.param("GET", f"/sweeps?offset={2**62}", None, id="list-offset-2**62"),
    pytest.param("GET", f"/sweeps/1/trials?offset={2**62}", None, id="trials-offset-2**62"),
]


@pytest.mark.parametrize(("method", "path", "body"), EDGE_REQUESTS)
def test_edge_request_is_handled(
    client: TestClient, trial: int, method: str, path: str, body: Any
) -> None:
    content = None if body is None else dumps(body)
    headers = {"content-type": "application/json"}
    assert_handled(
        client.request(method, path.format(trial=trial), content=content, headers=headers)
    )


# -- bodies no JSON parser takes -----------------------------------------------------------

UNPARSEABLE = {
    "invalid utf-8": b'{"name": "\xff\xfe"}',
    "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "5000-digit integer": b'{"name": "x", "seed": ' + b"9" * 5000 + b"}",
    "truncated": b'{"name": ',
    "empty": b"",
}


@pytest.mark.parametrize("path", ["/sweeps", "/jobs", "/tokens", "/projects", "/trials/{}/metrics"])
def test_unparseable_body_is_a_4xx_in_the_error_format(
    client: TestClient, trial: int, path: str
) -> None:
    wrong = {}
    for name, body in UNPARSEABLE.items():
        response = client.post(
            path.format(trial), content=body, headers={"content-type": "application/json"}
        )
        detail = response.json().get("detail")
        if not (400 <= response.status_code < 500 and isinstance(detail, list)):
            wrong[name] = (response.status_code, detail)
    assert not wrong, wrong
