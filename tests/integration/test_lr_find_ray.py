"""LR range tests trained for real on Ray: through the API, and against a grid on digits."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.scheduling.housekeeping import Housekeeping
from services.scheduling.scheduler import Scheduler
from services.specs.range_test import RangeTestRequest
from services.store import Store
from services.sweeps.range_tests import read_range_test, submit_range_test
from tests.support.sweeps import all_done, drive, submit, trials

pytestmark = pytest.mark.usefixtures("ray_local")
ENDED = {"succeeded", "failed", "pruned", "cancelled"}


def test_a_range_test_through_the_api_stops_on_blow_up_and_suggests_lrs(
    client: TestClient, store: Store, ray_scheduler: Scheduler
) -> None:
    base = {"task": "digits", "optimizer": {"name": "sgd", "momentum": 0.9}, "batch_size": 32}
    started = client.post(
        "/lr-find", json={"base": base, "min_lr": 1e-5, "max_lr": 100.0, "steps": 100}
    )
    assert started.status_code == 201, started.text
    sweep_id, trial_id = started.json()["sweep_id"], started.json()["trial_id"]
    drive(ray_scheduler, lambda: client.get(f"/trials/{trial_id}").json()["status"] in ENDED)
    body = client.get(f"/lr-find/{sweep_id}").json()
    assert body["status"] == "succeeded" and body["provisional"] is False, body["error"]
    # max_lr 100 is far past where SGD diverges: the test ends early, on the blow-up.
    assert body["stop_reason"].startswith("range test ended: loss ")
    curve = body["curve"]
    assert 20 < curve["points"] < 100
    assert curve["lr"][0] == pytest.approx(1e-5)
    assert all(b > a for a, b in itertools.pairwise(curve["lr"]))
    assert body["verdict"] == "ok"
    assert {s["method"] for s in body["suggestions"]} == {"steepest", "minimum", "valley"}
    assert all(s["reasoning"] for s in body["suggestions"])
    assert 1e-4 < body["recommended"]["lr"] < 10
    assert body["bounds"]["low"] < body["recommended"]["lr"] < body["bounds"]["high"] * 3


GRID_LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
DIGITS = {"task": "digits", "batch_size": 32, "budget": {"max_steps": 200}, "eval_every": 200}


def best_grid_lr(store: Store, sweep_id: int, optimizer: str) -> tuple[float, float]:
    """The lr with the lowest final val_loss among the grid's trials of `optimizer`."""
    scored = []
    for t in trials(store, sweep_id):
        if t.spec["optimizer"]["name"] != optimizer:
            continue
        (series,) = store.metrics.read(t.project_id, t.id, ["val_loss"])
        final = series.values[-1] if series.values else math.nan
        if math.isfinite(final):
            scored.append((final, t.spec["optimizer"]["lr"]))
    final, lr = min(scored)
    return lr, final


@pytest.mark.slow
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_the_range_test_lands_within_10x_of_the_best_lr_a_grid_finds(
    store: Store, ray_scheduler: Scheduler, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's acceptance test, for SGD and Adam on digits."""
    optimizers = ["sgd", "adam"]
    space: dict[str, Any] = {
        "optimizer": [{"name": name} for name in optimizers],
        "optimizer.lr": GRID_LRS,
    }
    grid = submit(store, DIGITS, space)
    project = store.projects.get_by_name("p")
    assert project is not None
    tests = {
        name: submit_range_test(
            store,
            project.id,
            RangeTestRequest.model_validate(
                {"base": {**DIGITS, "optimizer": {"name": name}}, "steps": 100}
            ),
        ).id
        for name in optimizers
    }
    drive(
        ray_scheduler,
        lambda: all_done(store, grid)() and all(all_done(store, t)() for t in tests.values()),
        timeout=600,
    )
    lines = []
    for name, test_id in tests.items():
        result = read_range_test(store, project.id, test_id)
        reading = result.reading
        recommended, steepest, minimum = (
            reading.recommended,
            reading.get("steepest"),
            reading.get("minimum"),
        )
        assert recommended and steepest and minimum, reading.summary
        grid_lr, grid_loss = best_grid_lr(store, grid, name)
        gap = abs(math.log10(recommended.lr) - math.log10(grid_lr))
        lines.append(
            f"{name}: range test {recommended.method} lr {recommended.lr:.3g} "
            f"(steepest {steepest.lr:.3g}, minimum/10 {minimum.lr:.3g}); "
            f"grid best lr {grid_lr:g} (val_loss {grid_loss:.3f}); gap {gap:.2f} decades"
        )
        assert gap <= 1.0, lines[-1]
    with capsys.disabled():
        print("\n" + "\n".join(lines))


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_lr_auto_runs_the_range_test_then_the_grid_it_sets(
    client: TestClient, store: Store, ray_scheduler: Scheduler
) -> None:
    base = {**DIGITS, "optimizer": {"name": "adam"}, "budget": {"max_steps": 30}}
    auto = {"from": "range_test", "min_lr": 1e-5, "steps": 60, "values": 3}
    created = client.post("/sweeps", json={"base": base, "space": {"optimizer.lr": auto}})
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    test_id = created.json()["spec"]["lr_auto"]["range_test_sweep_id"]
    drive(
        ray_scheduler,
        lambda: client.get(f"/sweeps/{sweep_id}").json()["status"] == "finished",
        housekeeping=Housekeeping(store),  # it settles the lr once the range test has ended
    )
    sweep = client.get(f"/sweeps/{sweep_id}").json()
    assert sweep["trial_counts"] == {"succeeded": 3}
    resolution = sweep["spec"]["lr_auto"]["resolution"]
    lrs = sweep["spec"]["space"]["optimizer.lr"]["values"]
    assert (
        len(lrs) == 3 and resolution["low"] * 0.99 <= lrs[0] < lrs[-1] <= resolution["high"] * 1.01
    )
    items = client.get(f"/sweeps/{sweep_id}/trials").json()["items"]
    assert sorted(t["spec"]["optimizer"]["lr"] for t in items) == lrs
    test = client.get(f"/lr-find/{test_id}").json()
    assert test["status"] == "succeeded"
    assert test["recommended"]["lr"] == pytest.approx(resolution["lr"])
    # Adam on digits: the range test's lrs are where a grid finds the best (~1e-2).
    assert 1e-4 < resolution["lr"] < 1e-1
