"""Metric points through the HTTP API: idempotent ingest, non-finite values, series reads."""

from __future__ import annotations

import base64
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.metrics import BYTES_PER_POINT
from services.settings import Settings
from services.store import Store

JSON = {"content-type": "application/json"}


def make_trial(client: TestClient) -> int:
    sweep = client.post("/jobs", json={"task": "digits"})
    assert sweep.status_code == 201, sweep.text
    trials = client.get(f"/sweeps/{sweep.json()['id']}/trials").json()["items"]
    trial_id: int = trials[0]["id"]
    return trial_id


@pytest.fixture
def trial(client: TestClient) -> int:
    return make_trial(client)


def point(name: str, step: int, value: Any, time: float | None = None) -> dict[str, Any]:
    out = {"name": name, "step": step, "value": value}
    if time is not None:
        out["time"] = time
    return out


def ingest(client: TestClient, trial_id: int, points: list[dict[str, Any]]) -> int:
    response = client.post(f"/trials/{trial_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
    accepted: int = response.json()["accepted"]
    return accepted


def read(client: TestClient, trial_id: int, **params: Any) -> dict[str, dict[str, Any]]:
    """Series by name."""
    response = client.get(f"/trials/{trial_id}/metrics", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["trial_id"] == trial_id
    return {s["name"]: s for s in body["series"]}


def assert_invalid(response: Any, field: str, message: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    matching = [e for e in detail if e["field"] == field]
    assert matching, f"no error at field {field!r}: {detail}"
    assert any(message in e["message"] for e in matching), detail


def assert_nothing_stored(client: TestClient, trial_id: int) -> None:
    assert client.get(f"/trials/{trial_id}/metric-names").json() == []
    assert read(client, trial_id) == {}


# -- round trips --------------------------------------------------------------------------


def test_round_trip_keeps_values_times_and_non_finite_points(
    client: TestClient, trial: int
) -> None:
    values = [1.5, "NaN", "Infinity", "-Infinity", 0.25]
    points = [point("train_loss", i, v, time=1000.0 + i) for i, v in enumerate(values)]
    assert ingest(client, trial, points) == 5

    response = client.get(f"/trials/{trial}/metrics")
    series = response.json()["series"]
    assert len(series) == 1
    loss = series[0]
    assert loss["name"] == "train_loss"
    assert loss["steps"] == [0, 1, 2, 3, 4]
    assert loss["values"] == values
    assert loss["times"] == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    assert (loss["total"], loss["downsampled"], loss["next_start"]) == (5, False, None)
    # Strict JSON on the wire: quoted strings, never bare NaN/Infinity literals.
    assert '"values":[1.5,"NaN","Infinity","-Infinity",0.25]' in response.text
    json.loads(response.text, parse_constant=lambda c: pytest.fail(f"bare {c} in response"))


def test_bare_json_nan_and_infinity_literals_are_accepted(client: TestClient, trial: int) -> None:
    body = (
        b'{"points": [{"name": "lr", "step": 0, "value": NaN},'
        b' {"name": "lr", "step": 1, "value": Infinity},'
        b' {"name": "lr", "step": 2, "value": -Infinity}]}'
    )
    response = client.post(f"/trials/{trial}/metrics", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3}
    assert read(client, trial)["lr"]["values"] == ["NaN", "Infinity", "-Infinity"]


def test_points_without_time_get_the_server_time(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("val_loss", 0, 1.0)])
    [recorded] = read(client, trial)["val_loss"]["times"]
    assert recorded > 1_600_000_000


def test_resending_a_batch_changes_nothing(client: TestClient, trial: int) -> None:
    # No explicit times: a re-sent point must not even move its recorded time.
    batch = [point("train_loss", s, v) for s, v in enumerate([3.0, "NaN", 2.0, "Infinity"])]
    assert ingest(client, trial, batch) == 4
    first = client.get(f"/trials/{trial}/metrics").json()
    assert ingest(client, trial, batch) == 4
    assert client.get(f"/trials/{trial}/metrics").json() == first


def test_duplicate_steps_in_one_batch_count_once_and_last_wins(
    client: TestClient, trial: int
) -> None:
    batch = [point("train_loss", 0, 1.0), point("train_loss", 0, 2.0)]
    assert ingest(client, trial, batch) == 1
    assert read(client, trial)["train_loss"]["values"] == [2.0]


def test_resumed_trial_overwrites_the_steps_it_reruns(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("train_loss", s, 1.0, time=10.0) for s in range(5)])
    ingest(client, trial, [point("train_loss", s, 2.0, time=20.0) for s in range(3, 6)])
    loss = read(client, trial)["train_loss"]
    assert loss["steps"] == [0, 1, 2, 3, 4, 5]
    assert loss["values"] == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    assert loss["times"] == [10.0, 10.0, 10.0, 20.0, 20.0, 20.0]


def test_overwrite_with_nan_and_back(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("grad_norm", 7, 1.0)])
    ingest(client, trial, [point("grad_norm", 7, "NaN")])
    assert read(client, trial)["grad_norm"]["values"] == ["NaN"]
    ingest(client, trial, [point("grad_norm", 7, 4.0)])
    assert read(client, trial)["grad_norm"]["values"] == [4.0]


def test_metric_names_lists_every_name_once(client: TestClient, trial: int) -> None:
    names = ["val_loss", "lr", "train_loss", "lr/1"]
    ingest(client, trial, [point(n, s, 1.0) for n in names for s in range(3)])
    response = client.get(f"/trials/{trial}/metric-names")
    assert response.status_code == 200
    assert sorted(response.json()) == sorted(names)


def test_metrics_of_one_trial_stay_with_it(client: TestClient, trial: int) -> None:
    other = make_trial(client)
    ingest(client, trial, [point("train_loss", 0, 1.0)])
    assert_nothing_stored(client, other)


# -- reads --------------------------------------------------------------------------------


def test_downsampled_read_keeps_ends_spike_and_nan(client: TestClient, trial: int) -> None:
    values: list[Any] = [math.sin(s / 50) for s in range(1000)]
    values[500] = 100.0
    values[700] = "NaN"
    ingest(client, trial, [point("train_loss", s, v) for s, v in enumerate(values)])

    loss = read(client, trial, max_points=50)["train_loss"]
    assert loss["downsampled"] is True
    assert loss["total"] == 1000
    assert 4 <= len(loss["steps"]) <= 50
    assert len(loss["values"]) == len(loss["times"]) == len(loss["steps"])
    assert loss["steps"] == sorted(set(loss["steps"]))
    assert loss["steps"][0] == 0 and loss["steps"][-1] == 999
    kept = dict(zip(loss["steps"], loss["values"], strict=True))
    assert kept.get(500) == 100.0
    assert kept.get(700) == "NaN"


def test_downsampled_read_of_a_short_series_is_whole(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("lr", s, 0.1) for s in range(10)])
    lr = read(client, trial, max_points=50)["lr"]
    assert (lr["downsampled"], lr["total"], lr["steps"]) == (False, 10, list(range(10)))


def test_downsampled_read_within_a_step_range(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("lr", s, float(s)) for s in range(200)])
    lr = read(client, trial, max_points=10, start=100, end=149)["lr"]
    assert lr["total"] == 50
    assert lr["steps"][0] == 100 and lr["steps"][-1] == 149
    assert all(100 <= s <= 149 for s in lr["steps"])


def test_raw_read_pages_with_limit_and_next_start(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("train_loss", s * 10, float(s)) for s in range(10)])
    seen: list[int] = []
    start: int | None = 0
    pages = 0
    while start is not None:
        loss = read(client, trial, limit=4, start=start)["train_loss"]
        assert loss["downsampled"] is False
        assert len(loss["steps"]) <= 4
        assert loss["total"] == len(loss["steps"])
        seen += loss["steps"]
        start = loss["next_start"]
        pages += 1
    assert pages == 3
    assert seen == [s * 10 for s in range(10)]


def test_raw_read_within_a_step_range(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("lr", s, float(s)) for s in range(20)])
    lr = read(client, trial, start=5, end=8)["lr"]
    assert lr["steps"] == [5, 6, 7, 8]
    assert lr["values"] == [5.0, 6.0, 7.0, 8.0]
    assert lr["next_start"] is None


def test_names_filter_takes_repeated_parameters(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point(n, 0, 1.0) for n in ("a", "b", "c")])
    response = client.get(f"/trials/{trial}/metrics?name=a&name=c")
    assert response.status_code == 200
    assert [s["name"] for s in response.json()["series"]] == ["a", "c"]
    assert list(read(client, trial)) == ["a", "b", "c"]


def test_read_of_a_trial_without_points_is_empty(client: TestClient, trial: int) -> None:
    assert_nothing_stored(client, trial)


# -- invalid reads ------------------------------------------------------------------------


def test_start_after_end_is_422(client: TestClient, trial: int) -> None:
    response = client.get(f"/trials/{trial}/metrics", params={"start": 10, "end": 5})
    assert_invalid(response, "start", "must not be after end")


def test_max_points_below_four_is_422(client: TestClient, trial: int) -> None:
    response = client.get(f"/trials/{trial}/metrics", params={"max_points": 3})
    assert_invalid(response, "max_points", "greater than or equal to 4")
    assert response.json()["detail"][0]["in"] == "query"


def test_max_points_over_the_series_cap_is_422(
    client: TestClient, trial: int, settings: Settings
) -> None:
    cap = settings.max_series_points
    response = client.get(f"/trials/{trial}/metrics", params={"max_points": cap + 1})
    assert_invalid(response, "max_points", f"at most {cap}")


def test_raw_limit_over_the_series_cap_is_422(
    client: TestClient, trial: int, settings: Settings
) -> None:
    cap = settings.max_series_points
    response = client.get(f"/trials/{trial}/metrics", params={"limit": cap + 1})
    assert_invalid(response, "limit", f"at most {cap}")


@pytest.mark.parametrize("param", ["start", "end"])
def test_negative_step_bound_is_422(client: TestClient, trial: int, param: str) -> None:
    response = client.get(f"/trials/{trial}/metrics", params={param: -1})
    assert_invalid(response, param, "greater than or equal to 0")


def test_name_filter_with_nul_is_422(client: TestClient, trial: int) -> None:
    ingest(client, trial, [point("a", 0, 1.0)])
    response = client.get(f"/trials/{trial}/metrics", params={"name": "a\x00"})
    # Names that can never have been stored (see the ingest rules) are the caller's error.
    assert_invalid(response, "name[0]", "pattern")


# -- invalid batches ----------------------------------------------------------------------


def test_batch_over_the_point_limit_is_413_and_stores_nothing(
    client: TestClient, trial: int, settings: Settings
) -> None:
    limit = settings.max_points_per_request
    points = [point("train_loss", s, 1.0) for s in range(limit + 1)]
    response = client.post(f"/trials/{trial}/metrics", json={"points": points})
    assert_invalid(response, "points", f"the limit is {limit}", status=413)
    assert_nothing_stored(client, trial)


def test_batch_at_the_point_limit_is_accepted(
    client: TestClient, trial: int, settings: Settings
) -> None:
    limit = settings.max_points_per_request
    assert ingest(client, trial, [point("lr", s, 1.0) for s in range(limit)]) == limit
    assert read(client, trial, max_points=10)["lr"]["total"] == limit


def test_body_over_the_byte_limit_is_413_and_stores_nothing(
    store: Store, client: TestClient, trial: int, tmp_path: Path
) -> None:
    # Two points allowed, so the byte cap is 2 * 512: one small point padded past it.
    small = create_app(Settings(data_dir=tmp_path, max_points_per_request=2), store)
    body = json.dumps({"points": [point("lr", 0, 1.0)]}).encode() + b" " * 2000
    with TestClient(small, raise_server_exceptions=False) as limited:
        limited.headers["Authorization"] = client.headers["Authorization"]
        response = limited.post(f"/trials/{trial}/metrics", content=body, headers=JSON)
        assert response.status_code == 413, response.text
        assert "bytes" in response.json()["detail"][0]["message"]
    assert_nothing_stored(client, trial)


BAD_POINTS = [
    pytest.param({"step": -1}, "points[0].step", "greater than or equal to 0", id="step-negative"),
    pytest.param(
        {"step": 2**63},
        "points[0].step",
        "less than or equal to 9223372036854775807",
        id="step-2**63",
    ),
    pytest.param({"step": 1.5}, "points[0].step", "integer", id="step-fraction"),
    pytest.param({"step": "one"}, "points[0].step", "integer", id="step-text"),
    pytest.param({"name": ""}, "points[0].name", "at least 1 character", id="name-empty"),
    pytest.param({"name": "loss\x00"}, "points[0].name", "pattern", id="name-nul"),
    pytest.param({"name": "x" * 201}, "points[0].name", "at most 200", id="name-long"),
    pytest.param({"value": "lots"}, "points[0].value", "number", id="value-text"),
    pytest.param({"value": None}, "points[0].value", "number", id="value-null"),
    pytest.param(
        {"time": -1.0}, "points[0].time", "greater than or equal to 0", id="time-negative"
    ),
    pytest.param({"epoch": 3}, "points[0].epoch", "not permitted", id="unknown-key"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_POINTS)
def test_invalid_point_is_422_naming_the_field(
    client: TestClient, trial: int, change: dict[str, Any], field: str, message: str
) -> None:
    good = point("train_loss", 1, 1.0)
    response = client.post(f"/trials/{trial}/metrics", json={"points": [{**good, **change}]})
    assert_invalid(response, field, message)
    assert_nothing_stored(client, trial)


def test_one_bad_point_rejects_the_whole_batch(client: TestClient, trial: int) -> None:
    points = [point("lr", 0, 1.0), point("lr", -1, 1.0)]
    response = client.post(f"/trials/{trial}/metrics", json={"points": points})
    assert_invalid(response, "points[1].step", "greater than or equal to 0")
    assert_nothing_stored(client, trial)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b"[]", "", "object"),
        (b"{}", "points", "required"),
        (b'{"points": {}}', "points", "array"),
        (b'{"points": [], "trial": 1}', "trial", "not permitted"),
        (b'{"points": [', "", "JSON"),
        (b'{"series": {}}', "series", "array"),
        (b'{"series": [1]}', "series[0]", "object"),
        (b'{"series": [{"name": "lr"}]}', "series[0].steps", "required"),
        (b'{"series": [{"name": "lr", "steps": [0]}]}', "series[0].values", "required"),
        (b'{"series": [{"steps": [], "values": []}]}', "series[0].name", "required"),
    ],
)
def test_invalid_batch_shape_is_422(
    client: TestClient, trial: int, body: bytes, field: str, message: str
) -> None:
    response = client.post(f"/trials/{trial}/metrics", content=body, headers=JSON)
    assert_invalid(response, field, message)


def test_batch_errors_say_they_are_in_the_body(client: TestClient, trial: int) -> None:
    # The same shape as every other body error (POST /sweeps says "in": "body").
    response = client.post(f"/trials/{trial}/metrics", json={"points": [point("lr", -1, 1.0)]})
    assert response.status_code == 422
    assert response.json()["detail"][0].get("in") == "body", response.text


def test_empty_batch_is_accepted_as_nothing(client: TestClient, trial: int) -> None:
    assert ingest(client, trial, []) == 0
    assert_nothing_stored(client, trial)


def test_ingest_to_a_missing_trial_is_404(client: TestClient) -> None:
    response = client.post("/trials/987654/metrics", json={"points": [point("lr", 0, 1.0)]})
    assert response.status_code == 404, response.text
    assert "trial 987654 not found" in response.json()["detail"][0]["message"]
    assert client.get("/trials/987654/metrics").status_code == 404
    assert client.get("/trials/987654/metric-names").status_code == 404


# -- the columnar form (series) -------------------------------------------------------------


def series(
    name: str, steps: list[int], values: list[Any], times: list[Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "steps": steps, "values": values}
    if times is not None:
        out["times"] = times
    return out


def ingest_body(client: TestClient, trial_id: int, body: dict[str, Any]) -> int:
    response = client.post(f"/trials/{trial_id}/metrics", json=body)
    assert response.status_code == 200, response.text
    accepted: int = response.json()["accepted"]
    return accepted


def test_series_round_trip_keeps_values_times_and_non_finite_points(
    client: TestClient, trial: int
) -> None:
    values = [1.5, "NaN", "Infinity", "-Infinity", 0.25]
    times = [1000.0 + i for i in range(5)]
    body = {"series": [series("train_loss", list(range(5)), values, times)]}
    assert ingest_body(client, trial, body) == 5
    loss = read(client, trial)["train_loss"]
    assert (loss["steps"], loss["values"], loss["times"]) == (list(range(5)), values, times)


def test_series_take_bare_non_finite_literals(client: TestClient, trial: int) -> None:
    body = b'{"series": [{"name": "lr", "steps": [0, 1, 2], "values": [NaN, Infinity, -Infinity]}]}'
    response = client.post(f"/trials/{trial}/metrics", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert read(client, trial)["lr"]["values"] == ["NaN", "Infinity", "-Infinity"]


def test_series_without_times_get_the_server_time(client: TestClient, trial: int) -> None:
    body = {"series": [series("a", [0], [1.0]), series("b", [0, 1], [1.0, 2.0], [5.0, None])]}
    assert ingest_body(client, trial, body) == 3
    stored = read(client, trial)
    assert stored["a"]["times"][0] > 1_600_000_000
    assert stored["b"]["times"][0] == 5.0 and stored["b"]["times"][1] > 1_600_000_000


def test_resending_a_series_batch_changes_nothing(client: TestClient, trial: int) -> None:
    body = {
        "series": [
            series("train_loss", [0, 1, 2], [3.0, "NaN", 2.0]),
            series("lr", [0, 1, 2], [0.1, 0.1, 0.05], [10.0, 11.0, 12.0]),
        ]
    }
    assert ingest_body(client, trial, body) == 6
    first = client.get(f"/trials/{trial}/metrics").json()
    assert ingest_body(client, trial, body) == 6
    assert client.get(f"/trials/{trial}/metrics").json() == first


def test_points_and_series_in_one_batch(client: TestClient, trial: int) -> None:
    # Rows, then series: a (name, step) in both keeps the series' value, as a later
    # point of one batch wins.
    body = {
        "points": [point("val_loss", 9, 0.5), point("lr", 0, 9.0)],
        "series": [series("lr", [0, 1], [0.1, 0.2]), series("lr", [2], ["NaN"])],
    }
    assert ingest_body(client, trial, body) == 4
    stored = read(client, trial)
    assert stored["val_loss"]["values"] == [0.5]
    assert (stored["lr"]["steps"], stored["lr"]["values"]) == ([0, 1, 2], [0.1, 0.2, "NaN"])


def test_empty_series_are_accepted_as_nothing(client: TestClient, trial: int) -> None:
    assert ingest_body(client, trial, {"series": []}) == 0
    assert ingest_body(client, trial, {"series": [series("lr", [], [])], "points": []}) == 0
    assert_nothing_stored(client, trial)


def test_series_over_the_point_limit_is_413_and_stores_nothing(
    client: TestClient, trial: int, settings: Settings
) -> None:
    # Every point counts, rows and columns together.
    limit = settings.max_points_per_request
    half = limit // 2
    body = {
        "points": [point("a", s, 1.0) for s in range(half)],
        "series": [series("b", list(range(limit - half + 1)), [1.0] * (limit - half + 1))],
    }
    response = client.post(f"/trials/{trial}/metrics", json=body)
    assert_invalid(response, "series", f"{limit + 1} points in one batch", status=413)
    assert "the limit is" in response.json()["detail"][0]["message"]
    assert_nothing_stored(client, trial)
    body["series"][0] = series("b", list(range(limit - half)), [1.0] * (limit - half))
    assert ingest_body(client, trial, body) == limit


BAD_SERIES = [
    pytest.param(
        {"values": [1.0]}, "series[0].values", "values has 1 items and steps 2", id="short"
    ),
    pytest.param({"values": [1.0, 2.0, 3.0]}, "series[0].values", "same length", id="values-long"),
    pytest.param({"times": [1.0]}, "series[0].times", "times has 1 items and steps 2", id="times"),
    pytest.param({"steps": [0, -1]}, "series[0].steps[1]", "greater than or equal to 0", id="neg"),
    pytest.param(
        {"steps": [0, 2**63]},
        "series[0].steps[1]",
        "less than or equal to 9223372036854775807",
        id="step-2**63",
    ),
    pytest.param({"steps": [0, 1.5]}, "series[0].steps[1]", "integer", id="step-fraction"),
    pytest.param({"steps": 3}, "series[0].steps", "array", id="steps-not-a-list"),
    pytest.param({"name": ""}, "series[0].name", "at least 1 character", id="name-empty"),
    pytest.param({"name": "loss\x00"}, "series[0].name", "pattern", id="name-nul"),
    pytest.param({"name": "x" * 201}, "series[0].name", "at most 200", id="name-long"),
    pytest.param({"name": 3}, "series[0].name", "string", id="name-number"),
    pytest.param({"values": [1.0, "lots"]}, "series[0].values[1]", "number", id="value-text"),
    pytest.param({"values": [None, 1.0]}, "series[0].values[0]", "number", id="value-null"),
    pytest.param(
        {"times": [1.0, -1.0]}, "series[0].times[1]", "greater than or equal to 0", id="time-neg"
    ),
    pytest.param({"times": [1.0, 1e12]}, "series[0].times[1]", "less than or equal", id="time-big"),
    pytest.param({"epoch": 3}, "series[0].epoch", "not permitted", id="unknown-key"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_SERIES)
def test_invalid_series_is_422_naming_the_field(
    client: TestClient, trial: int, change: dict[str, Any], field: str, message: str
) -> None:
    good = series("train_loss", [0, 1], [1.0, 2.0])
    body = {"points": [point("lr", 0, 1.0)], "series": [{**good, **change}]}
    response = client.post(f"/trials/{trial}/metrics", json=body)
    assert_invalid(response, field, message)
    assert response.json()["detail"][0]["in"] == "body"
    assert_nothing_stored(client, trial)


def test_the_openapi_body_documents_points_and_series(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/trials/{trial_id}/metrics"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"points", "series"}
    assert body["anyOf"] == [{"required": ["points"]}, {"required": ["series"]}]
    columns = body["properties"]["series"]["items"]
    assert set(columns["required"]) == {"name", "steps"}
    assert columns["oneOf"] == [{"required": ["values"]}, {"required": ["values_f64"]}]
    assert columns["not"] == {"required": ["times", "times_f64"]}
    assert {"values", "values_f64", "times", "times_f64"} <= set(columns["properties"])
    for packed_column in ("values_f64", "times_f64"):
        documented = columns["properties"][packed_column]
        assert documented["type"] == "string" and documented["contentEncoding"] == "base64"
        assert "little-endian IEEE-754 float64" in documented["description"]
    assert "$ref" not in str(body)


# -- binary columns (values_f64, times_f64) -------------------------------------------------


def f64(numbers: list[float]) -> str:
    """Base64 of little-endian float64s, as values_f64 and times_f64 take them."""
    return base64.b64encode(struct.pack(f"<{len(numbers)}d", *numbers)).decode()


def packed(
    name: str, steps: list[int], values: list[float], times: list[float] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "steps": steps, "values_f64": f64(values)}
    if times is not None:
        out["times_f64"] = f64(times)
    return out


def test_packed_series_round_trip_keeps_values_times_and_non_finite_points(
    client: TestClient, trial: int
) -> None:
    values = [1.5, math.nan, math.inf, -math.inf, 0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308]
    times = [1_700_000_000.123456 + i / 7 for i in range(len(values))]
    steps = list(range(0, 8 * len(values), 8))
    body = {"series": [packed("train_loss", steps, values, times)]}
    assert ingest_body(client, trial, body) == len(values)
    loss = read(client, trial)["train_loss"]
    assert loss["steps"] == steps
    expected = [
        1.5,
        "NaN",
        "Infinity",
        "-Infinity",
        0.1 + 0.2,
        -0.0,
        5e-324,
        1.7976931348623157e308,
    ]
    assert loss["values"] == expected
    assert loss["times"] == times  # every bit of a float64, not rounded to the ms


def test_packed_nan_of_any_bits_is_stored_as_nan(client: TestClient, trial: int) -> None:
    # A quiet NaN with a payload and a negative one: both are the NaN "NaN" in JSON gives.
    raw = struct.pack("<QQ", 0x7FF8_0000_0000_0001, 0xFFF8_0000_0000_0000)
    body = {
        "series": [{"name": "lr", "steps": [0, 1], "values_f64": base64.b64encode(raw).decode()}]
    }
    assert ingest_body(client, trial, body) == 2
    assert read(client, trial)["lr"]["values"] == ["NaN", "NaN"]
    assert ingest_body(client, trial, body) == 2  # and a re-send matches what is stored
    assert read(client, trial)["lr"]["values"] == ["NaN", "NaN"]


def test_packed_and_json_columns_store_the_same_points(client: TestClient) -> None:
    values = [3.0, math.nan, 2.5, math.inf]
    times = [100.0, 101.5, 102.25, 103.125]
    as_json = ["NaN" if math.isnan(v) else "Infinity" if v == math.inf else v for v in values]
    trials = [make_trial(client) for _ in range(4)]
    bodies = [
        {"series": [series("m", [0, 1, 2, 3], as_json, times)]},
        {"series": [packed("m", [0, 1, 2, 3], values, times)]},
        # Either column may be packed on its own.
        {"series": [{**series("m", [0, 1, 2, 3], as_json), "times_f64": f64(times)}]},
        {"series": [{**packed("m", [0, 1, 2, 3], values), "times": times}]},
    ]
    for trial_id, body in zip(trials, bodies, strict=True):
        assert ingest_body(client, trial_id, body) == 4
    stored = [read(client, t)["m"] for t in trials]
    assert all(
        (s["steps"], s["values"], s["times"])
        == (stored[0]["steps"], stored[0]["values"], stored[0]["times"])
        for s in stored
    ), stored
    assert stored[0]["values"] == [3.0, "NaN", 2.5, "Infinity"]


def test_packed_series_without_times_get_the_server_time(client: TestClient, trial: int) -> None:
    assert ingest_body(client, trial, {"series": [packed("a", [0, 1], [1.0, 2.0])]}) == 2
    assert all(t > 1_600_000_000 for t in read(client, trial)["a"]["times"])


def test_resending_a_packed_batch_changes_nothing(client: TestClient, trial: int) -> None:
    body = {
        "series": [
            packed("train_loss", [0, 1, 2], [3.0, math.nan, 2.0]),
            packed("lr", [0, 1, 2], [0.1, 0.1, 0.05], [10.0, 11.0, 12.0]),
        ],
        "points": [point("val_loss", 2, 0.5)],
    }
    assert ingest_body(client, trial, body) == 7
    first = client.get(f"/trials/{trial}/metrics").json()
    assert ingest_body(client, trial, body) == 7
    assert client.get(f"/trials/{trial}/metrics").json() == first


def test_empty_packed_columns_are_accepted_as_nothing(client: TestClient, trial: int) -> None:
    body = {"series": [{"name": "lr", "steps": [], "values_f64": "", "times_f64": ""}]}
    assert ingest_body(client, trial, body) == 0
    assert_nothing_stored(client, trial)


def test_packed_series_over_the_point_limit_is_413_and_stores_nothing(
    client: TestClient, trial: int, settings: Settings
) -> None:
    limit = settings.max_points_per_request
    steps = list(range(limit + 1))
    body = {"series": [packed("b", steps, [1.0] * (limit + 1), [5.0] * (limit + 1))]}
    response = client.post(f"/trials/{trial}/metrics", json=body)
    assert_invalid(response, "series", f"{limit + 1} points in one batch", status=413)
    assert_nothing_stored(client, trial)
    body = {"series": [packed("b", steps[:limit], [1.0] * limit, [5.0] * limit)]}
    assert ingest_body(client, trial, body) == limit


def test_the_largest_packed_batch_passes_the_body_size_guard(
    client: TestClient, trial: int, settings: Settings
) -> None:
    # The request size guard allows BYTES_PER_POINT a point: a packed batch at the limit,
    # one point a series with the longest name and step, stays under it.
    limit = settings.max_points_per_request
    name = "n" * 200
    body = {"series": [packed(name, [2**63 - 1 - i], [1.0], [5.0]) for i in range(limit)]}
    content = json.dumps(body).encode()
    assert len(content) <= limit * BYTES_PER_POINT
    response = client.post(f"/trials/{trial}/metrics", content=content, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == limit


BAD_PACKED = [
    pytest.param(
        {"values_f64": "AAAA@@@@AAAA"}, "series[0].values_f64", "not valid base64", id="alphabet"
    ),
    pytest.param(
        {"values_f64": f64([1.0, 2.0])[:-1]}, "series[0].values_f64", "not valid base64", id="pad"
    ),
    pytest.param({"values_f64": "AAAAé"}, "series[0].values_f64", "not valid base64", id="utf8"),
    pytest.param(
        {"values_f64": f64([1.0, 2.0]) + "AAAA"},
        "series[0].values_f64",
        "not valid base64",
        id="after-padding",
    ),
    pytest.param(
        {"values_f64": base64.b64encode(bytes(12)).decode()},
        "series[0].values_f64",
        "decodes to 12 bytes, not a multiple of 8",
        id="bytes-12",
    ),
    pytest.param(
        {"values_f64": f64([1.0])},
        "series[0].values_f64",
        "values_f64 has 1 numbers and steps 2",
        id="short",
    ),
    pytest.param(
        {"values_f64": f64([1.0, 2.0, 3.0])}, "series[0].values_f64", "same length", id="long"
    ),
    pytest.param({"values_f64": 3}, "series[0].values_f64", "string", id="not-a-string"),
    pytest.param(
        {"values": [1.0, 2.0], "values_f64": f64([1.0, 2.0])},
        "series[0].values_f64",
        "values or values_f64, not both",
        id="both-values",
    ),
    pytest.param({"values_f64": None}, "series[0].values_f64", "string", id="values_f64-null"),
    pytest.param(
        {"times": [1.0, 2.0], "times_f64": f64([1.0, 2.0])},
        "series[0].times_f64",
        "times or times_f64, not both",
        id="both-times",
    ),
    pytest.param(
        {"times": None, "times_f64": f64([1.0, 2.0])},
        "series[0].times_f64",
        "times or times_f64, not both",
        id="both-times-null",
    ),
    pytest.param(
        {"times_f64": f64([1.0])},
        "series[0].times_f64",
        "times_f64 has 1 numbers and steps 2",
        id="times-short",
    ),
    pytest.param(
        {"times_f64": "!!"}, "series[0].times_f64", "not valid base64", id="times-alphabet"
    ),
    pytest.param(
        {"times_f64": base64.b64encode(bytes(9)).decode()},
        "series[0].times_f64",
        "not a multiple of 8",
        id="times-bytes-9",
    ),
    pytest.param(
        {"times_f64": f64([1.0, -1.0])},
        "series[0].times_f64",
        "times_f64[1] is -1.0: times are Unix seconds, finite, from 0 to 1e+11",
        id="time-neg",
    ),
    pytest.param(
        {"times_f64": f64([1e12, 1.0])},
        "series[0].times_f64",
        "times_f64[0] is 1000000000000.0",
        id="time-big",
    ),
    pytest.param(
        {"times_f64": f64([1.0, math.nan])}, "series[0].times_f64", "[1] is nan", id="time-nan"
    ),
    pytest.param(
        {"times_f64": f64([math.inf, 1.0])}, "series[0].times_f64", "[0] is inf", id="time-inf"
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_PACKED)
def test_invalid_packed_series_is_422_naming_the_field(
    client: TestClient, trial: int, change: dict[str, Any], field: str, message: str
) -> None:
    good = packed("train_loss", [0, 1], [1.0, 2.0])
    body = {"points": [point("lr", 0, 1.0)], "series": [{**good, **change}]}
    response = client.post(f"/trials/{trial}/metrics", json=body)
    assert_invalid(response, field, message)
    assert response.json()["detail"][0]["in"] == "body"
    assert_nothing_stored(client, trial)


def test_a_series_without_values_is_422_at_values(client: TestClient, trial: int) -> None:
    body = {"series": [{"name": "lr", "steps": [0], "times_f64": f64([1.0])}]}
    response = client.post(f"/trials/{trial}/metrics", json=body)
    assert_invalid(response, "series[0].values", "a series has values or values_f64")
    assert_nothing_stored(client, trial)


def test_every_bad_packed_series_is_reported_at_once(client: TestClient, trial: int) -> None:
    body = {
        "series": [
            packed("a", [0, 1], [1.0]),
            {**packed("b", [0], [1.0]), "times_f64": "?"},
            packed("c", [0], [1.0], [-5.0]),
        ]
    }
    response = client.post(f"/trials/{trial}/metrics", json=body)
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["detail"]]
    assert fields == ["series[0].values_f64", "series[1].times_f64", "series[2].times_f64"]
    assert_nothing_stored(client, trial)
