"""The batcher's encoder: columns per metric name, the same points the rows form holds,
non-finite values as strings, invalid names and values dropped, the GIL handed over."""

from __future__ import annotations

import json
import math
from typing import Any

import lrlab
import lrlab._batcher as batcher_module
import numpy as np
import pytest
from lrlab._batcher import YIELD_POINTS, Batcher, Entry

from tests.sdk.fake_server import FakeRunServer, points_of

T0 = 1_764_450_000.0


@pytest.fixture
def batcher() -> Any:
    sent: list[bytes] = []
    b = Batcher(sent.append, flush_interval=3600.0)
    yield b
    b.abort()


def strict(body: bytes) -> dict[str, Any]:
    """The body as the server reads it; a bare NaN or Infinity literal fails the test."""
    out: dict[str, Any] = json.loads(body, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    return out


def as_set(points: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(p["name"], p["step"], json.dumps(p["value"]), p.get("time")) for p in points}


def test_a_batch_goes_as_one_series_per_name(batcher: Batcher) -> None:
    entries: list[Entry] = [
        (s, T0 + s * 0.0123456, {"train_loss": 1.0 / (s + 1), "lr": 0.1}) for s in range(3)
    ]
    body, valid = batcher._encode(entries)
    assert valid == 6
    series = strict(body)["series"]
    assert [s["name"] for s in series] == ["train_loss", "lr"]
    loss = series[0]
    assert loss["steps"] == [0, 1, 2] and loss["values"] == [1.0, 0.5, 1.0 / 3]
    # One time per log call, to the ms.
    assert loss["times"] == [round(T0 + s * 0.0123456, 3) for s in range(3)]
    assert series[1]["times"] == loss["times"] and series[1]["values"] == [0.1] * 3


def test_columns_hold_the_points_the_rows_hold(batcher: Batcher) -> None:
    entries: list[Entry] = []
    for s in range(300):
        metrics: dict[Any, Any] = {"train_loss": 2.0 * 0.99**s, "lr": np.float32(0.05)}
        if s % 10 == 0:
            metrics["val_loss"] = float(s)  # a name in some log calls only
        if s % 7 == 0:
            metrics = dict(reversed(list(metrics.items())))  # the same names, other order
        if s % 50 == 0:
            metrics["odd"] = [math.nan, math.inf, -math.inf][s % 3]
        if s % 31 == 0:
            metrics["count"] = s  # ints and bools are numbers too
            metrics["flag"] = True
        entries.append((s, T0 + s, metrics))
    body, valid = batcher._encode(entries)
    rows, row_valid = batcher._encode_rows(entries)
    assert valid == row_valid == sum(len(e[2]) for e in entries)
    columns = points_of(strict(body))
    assert as_set(columns) == as_set(points_of(strict(rows)))
    assert len(columns) == valid
    odd = {p["step"]: p["value"] for p in columns if p["name"] == "odd"}
    assert odd == {
        0: "NaN",
        50: "-Infinity",
        100: "Infinity",
        150: "NaN",
        200: "-Infinity",
        250: "Infinity",
    }


class NotAFloat:
    def __float__(self) -> float:
        raise RuntimeError("a tensor with 2 elements cannot be converted to a scalar")


@pytest.mark.parametrize(
    "bad",
    ["not a number", None, [1.0], NotAFloat(), 10**400],
    ids=["text", "none", "list", "float-raises", "int-too-large"],
)
def test_values_that_are_not_numbers_are_dropped_with_their_steps(
    batcher: Batcher, bad: Any
) -> None:
    logged: list[dict[str, Any]] = [{"x": float(s), "y": 1.0} for s in range(4)]
    logged[2]["x"] = bad
    logged[3]["x"] = math.nan
    entries: list[Entry] = [(s, T0 + s, metrics) for s, metrics in enumerate(logged)]
    body, valid = batcher._encode(entries)
    assert valid == 7
    x = next(s for s in strict(body)["series"] if s["name"] == "x")
    assert (x["steps"], x["values"], x["times"]) == (
        [0, 1, 3],
        [0.0, 1.0, "NaN"],
        [T0, T0 + 1, T0 + 3],
    )
    assert "not a number" in batcher.stats.errors[-1]


def test_invalid_names_are_dropped_and_reported_once(batcher: Batcher) -> None:
    names: dict[Any, float] = {"bad\x00name": 1.0, "": 2.0, 3: 3.0, "ok": 4.0}
    entries: list[Entry] = [(s, T0, names) for s in range(5)]
    body, valid = batcher._encode(entries)
    assert valid == 5
    assert [s["name"] for s in strict(body)["series"]] == ["ok"]
    assert len([e for e in batcher.stats.errors if "not valid" in e]) == 3


def test_long_batches_hand_the_gil_over(batcher: Batcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stretch of encoding longer than YIELD_POINTS points, nor one json.dumps of more:
    the training thread gets the GIL back between them."""
    sleeps: list[float] = []
    monkeypatch.setattr(batcher_module, "sleep", sleeps.append)
    entries: list[Entry] = [(s, T0, {f"m{i}": 0.5 for i in range(5)}) for s in range(4000)]
    body, valid = batcher._encode(entries)
    assert valid == 20_000 and len(sleeps) >= 20_000 // YIELD_POINTS
    series = strict(body)["series"]
    assert max(len(s["values"]) for s in series) <= YIELD_POINTS // 5 + 1
    assert len(points_of(strict(body))) == 20_000


def test_an_empty_log_call_sends_nothing(batcher: Batcher) -> None:
    body, valid = batcher._encode([(0, T0, {}), (1, T0, {})])
    assert (strict(body), valid) == ({"series": []}, 0)


def test_a_server_without_columns_gets_rows() -> None:
    """A server from before columns answers 422 at `series`: the run sends rows from then
    on, and nothing is lost."""
    fake = FakeRunServer()
    fake.rows_only = True
    client = lrlab.Client("http://lrlab.test", "t", transport=fake)
    run = client.start_run("old-server", batch_size=10, flush_interval=0.01)
    for s in range(50):
        run.log({"x": float(s), "y": math.inf}, step=s)
    run.finish(timeout=30)
    assert len(fake.stored) == 100 and run.stats.dropped_points == 0
    assert set(fake.forms) == {"points"} and run.stats.errors == []


def test_runs_send_columns() -> None:
    fake = FakeRunServer()
    client = lrlab.Client("http://lrlab.test", "t", transport=fake)
    run = client.start_run("columns", batch_size=10, flush_interval=0.01)
    for s in range(50):
        run.log({"x": float(s), "y": -math.inf}, step=s)
    run.finish(timeout=30)
    assert len(fake.stored) == 100 and set(fake.forms) == {"series"}
    assert fake.stored[("y", 7)] == "-Infinity" and fake.stored[("x", 7)] == 7.0
