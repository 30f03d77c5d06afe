"""The batcher's encoder: columns per metric name (values and times packed as base64
float64s, or JSON lists for older servers), the same points the rows form holds,
non-finite values kept, invalid names and values dropped, the GIL handed over."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import lrlab
import lrlab._batcher as batcher_module
import numpy as np
import pytest
from lrlab._batcher import YIELD_POINTS, Batcher, Entry

from tests.sdk.fake_server import FakeRunServer, points_of

T0 = 1_764_450_000.0
FORMS = pytest.mark.parametrize("packed", [True, False], ids=["packed", "json"])


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


def little_endian(column: str) -> tuple[float, ...]:
    raw = base64.b64decode(column, validate=True)
    return struct.unpack(f"<{len(raw) // 8}d", raw)


def test_a_batch_goes_as_one_series_per_name_with_packed_columns(batcher: Batcher) -> None:
    entries: list[Entry] = [
        (s, T0 + s * 0.0123456, {"train_loss": 1.0 / (s + 1), "lr": 0.1}) for s in range(3)
    ]
    body, valid = batcher._encode(entries)
    assert valid == 6
    series = strict(body)["series"]
    assert [s["name"] for s in series] == ["train_loss", "lr"]
    loss = series[0]
    assert set(loss) == {"name", "steps", "values_f64", "times_f64"}
    assert loss["steps"] == [0, 1, 2]
    assert little_endian(loss["values_f64"]) == (1.0, 0.5, 1.0 / 3)
    # One time per log call, every bit of it.
    assert little_endian(loss["times_f64"]) == tuple(T0 + s * 0.0123456 for s in range(3))
    assert series[1]["times_f64"] == loss["times_f64"]
    assert little_endian(series[1]["values_f64"]) == (0.1,) * 3


def test_a_batch_as_json_columns_for_older_servers(batcher: Batcher) -> None:
    entries: list[Entry] = [
        (s, T0 + s * 0.0123456, {"train_loss": 1.0 / (s + 1), "lr": 0.1}) for s in range(3)
    ]
    body, valid = batcher._encode(entries, packed=False)
    assert valid == 6
    loss, lr = strict(body)["series"]
    assert set(loss) == {"name", "steps", "values", "times"}
    assert loss["steps"] == [0, 1, 2] and loss["values"] == [1.0, 0.5, 1.0 / 3]
    # One time per log call, to the ms.
    assert loss["times"] == [round(T0 + s * 0.0123456, 3) for s in range(3)]
    assert lr["times"] == loss["times"] and lr["values"] == [0.1] * 3


def test_packed_columns_are_little_endian_on_any_host(
    batcher: Batcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = [1.5, -0.0, math.nan, math.inf, 5e-324, 2.0**70]
    expected = struct.pack(f"<{len(numbers)}d", *numbers)
    entries: list[Entry] = [(s, T0, {"x": v}) for s, v in enumerate(numbers)]
    body, _ = batcher._encode(entries)
    assert base64.b64decode(strict(body)["series"][0]["values_f64"]) == expected
    # On a big-endian host array("d") holds big-endian bytes: they are swapped.
    monkeypatch.setattr(batcher_module, "_BIG_ENDIAN", True)
    body, _ = batcher._encode(entries)
    swapped = base64.b64decode(strict(body)["series"][0]["values_f64"])
    assert swapped == struct.pack(f">{len(numbers)}d", *numbers)


@FORMS
def test_columns_hold_the_points_the_rows_hold(batcher: Batcher, packed: bool) -> None:
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
        if s % 37 == 0:
            metrics["text"] = "0.25"  # float() takes it: it is sent, as before
        entries.append((s, T0 + s, metrics))
    body, valid = batcher._encode(entries, packed=packed)
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
    assert {p["value"] for p in columns if p["name"] == "text"} == {0.25}


class NotAFloat:
    def __float__(self) -> float:
        raise RuntimeError("a tensor with 2 elements cannot be converted to a scalar")


@FORMS
@pytest.mark.parametrize(
    "bad",
    ["not a number", None, [1.0], NotAFloat(), 10**400],
    ids=["text", "none", "list", "float-raises", "int-too-large"],
)
def test_values_that_are_not_numbers_are_dropped_with_their_steps(
    batcher: Batcher, bad: Any, packed: bool
) -> None:
    logged: list[dict[str, Any]] = [{"x": float(s), "y": 1.0} for s in range(4)]
    logged[2]["x"] = bad
    logged[3]["x"] = math.nan
    entries: list[Entry] = [(s, T0 + s, metrics) for s, metrics in enumerate(logged)]
    body, valid = batcher._encode(entries, packed=packed)
    assert valid == 7
    x = [(p["step"], p["value"], p["time"]) for p in points_of(strict(body)) if p["name"] == "x"]
    assert x == [(0, 0.0, T0), (1, 1.0, T0 + 1), (3, "NaN", T0 + 3)]
    assert "not a number" in batcher.stats.errors[-1]


@FORMS
def test_invalid_names_are_dropped_and_reported_once(batcher: Batcher, packed: bool) -> None:
    names: dict[Any, float] = {"bad\x00name": 1.0, "": 2.0, 3: 3.0, "ok": 4.0}
    entries: list[Entry] = [(s, T0, names) for s in range(5)]
    body, valid = batcher._encode(entries, packed=packed)
    assert valid == 5
    assert [s["name"] for s in strict(body)["series"]] == ["ok"]
    body, valid = batcher._encode(entries, packed=not packed)
    assert valid == 5 and len([e for e in batcher.stats.errors if "not valid" in e]) == 3


@FORMS
def test_long_batches_hand_the_gil_over(
    batcher: Batcher, monkeypatch: pytest.MonkeyPatch, packed: bool
) -> None:
    """No stretch of encoding longer than YIELD_POINTS points, nor one column of more:
    the training thread gets the GIL back between them."""
    sleeps: list[float] = []
    monkeypatch.setattr(batcher_module, "sleep", sleeps.append)
    entries: list[Entry] = [(s, T0, {f"m{i}": 0.5 for i in range(5)}) for s in range(4000)]
    body, valid = batcher._encode(entries, packed=packed)
    assert valid == 20_000 and len(sleeps) >= 20_000 // YIELD_POINTS
    series = strict(body)["series"]
    assert max(len(s["steps"]) for s in series) <= YIELD_POINTS // 5 + 1
    assert len(points_of(strict(body))) == 20_000


@FORMS
def test_an_empty_log_call_sends_nothing(batcher: Batcher, packed: bool) -> None:
    body, valid = batcher._encode([(0, T0, {}), (1, T0, {})], packed=packed)
    assert (strict(body), valid) == ({"series": []}, 0)


def log_50(fake: FakeRunServer, name: str) -> lrlab.Run:
    client = lrlab.Client("http://lrlab.test", "t", transport=fake)
    run = client.start_run(name, batch_size=10, flush_interval=0.01)
    for s in range(50):
        run.log({"x": float(s), "y": -math.inf}, step=s)
    run.finish(timeout=30)
    return run


def test_runs_send_packed_columns() -> None:
    fake = FakeRunServer()
    run = log_50(fake, "columns")
    assert len(fake.stored) == 100 and set(fake.forms) == {"packed"}
    assert fake.stored[("y", 7)] == "-Infinity" and fake.stored[("x", 7)] == 7.0
    assert run.stats.dropped_points == 0 and run.stats.errors == []


def test_a_server_without_packed_columns_gets_json_columns() -> None:
    """A server from before values_f64 answers 422 at series[i].values_f64: the batch goes
    again as JSON columns, and so does every later one; nothing is lost."""
    fake = FakeRunServer()
    fake.json_columns_only = True
    run = log_50(fake, "json-columns-server")
    assert len(fake.stored) == 100 and run.stats.dropped_points == 0
    assert set(fake.forms) == {"series"} and run.stats.errors == []
    assert fake.attempts == len(fake.batches) + 1  # one refusal, then JSON only
    assert fake.stored[("y", 7)] == "-Infinity" and fake.stored[("x", 7)] == 7.0


def test_a_server_without_columns_gets_rows() -> None:
    """A server from before columns answers 422 at `series`: the run sends rows from then
    on, and nothing is lost."""
    fake = FakeRunServer()
    fake.rows_only = True
    run = log_50(fake, "old-server")
    assert len(fake.stored) == 100 and run.stats.dropped_points == 0
    assert set(fake.forms) == {"points"} and run.stats.errors == []
    assert fake.attempts == len(fake.batches) + 1


def test_a_packed_batch_refused_for_another_reason_is_dropped() -> None:
    # A 422 that is not about the packed columns (here a name the server refuses) is not
    # a reason to fall back: the batch is dropped and reported, as before.
    fake = FakeRunServer()
    fake.refuse_name = "y"
    run = log_50(fake, "refused")
    assert run.stats.dropped_points == 100 and set(fake.forms) <= {"packed"}
    assert "refused" in run.stats.errors[0]


def test_a_packed_batch_too_large_is_split() -> None:
    fake = FakeRunServer()
    fake.max_points = 7  # over it: 413, and the batch goes again in halves
    run = log_50(fake, "split")
    assert len(fake.stored) == 100 and max(fake.batches) <= 7
    assert set(fake.forms) == {"packed"} and run.stats.dropped_points == 0


def test_a_real_server_takes_packed_columns(client: lrlab.Client) -> None:
    """Against `lrlab serve`: packed columns are accepted (no fallback), every value and
    time arrives as sent, non-finite ones included."""
    values: list[Any] = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e-300, "0.25"]
    with client.start_run("packed", flush_interval=0.01) as run:
        for s in range(200):
            run.log({"loss": 1.0 / (s + 1), "odd": values[s % len(values)]}, step=s)
        run.flush(timeout=30)
        assert run._batcher._form == "packed"
    assert run.stats.sent_points == 400 and run.stats.dropped_points == 0
    loss, odd = sorted(client.metrics(run.id), key=lambda series: series.name)
    assert loss.steps == list(range(200)) and loss.values == [1.0 / (s + 1) for s in range(200)]
    expected = [float(values[s % len(values)]) for s in range(200)]
    assert [str(v) for v in odd.values] == [str(v) for v in expected]
    assert all(1_600_000_000 < t < 1e11 for t in odd.times)
