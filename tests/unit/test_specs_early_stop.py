"""The native early_stop spec: one model per pruner, its rules, and hyperband's rungs."""

from __future__ import annotations

from typing import Any

import pytest

from services.search import hyperband_rungs
from services.specs import SweepSpec
from services.specs.early_stop import AshaStop, HyperbandStop, MedianStop
from tests.support.specs import assert_rejected, trial


def spec(early_stop: Any, **fields: Any) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "base": trial(),
            "space": {"optimizer.lr": [0.1, 0.01]},
            "early_stop": early_stop,
            **fields,
        }
    )


def test_each_pruner_with_its_defaults() -> None:
    assert spec({"pruner": "asha"}).early_stop == AshaStop(
        min_resource=1, reduction_factor=4, min_early_stopping_rate=0
    )
    assert spec({"pruner": "median"}).early_stop == MedianStop(
        n_startup_trials=5, n_warmup_evals=0, interval_evals=1
    )
    hyperband = spec({"pruner": "hyperband", "max_resource": 27, "brackets": 2}).early_stop
    assert hyperband == HyperbandStop(max_resource=27, brackets=2, reduction_factor=3)
    assert spec(None).early_stop is None
    stored = spec({"pruner": "hyperband", "min_resource": 2})
    assert SweepSpec.model_validate_json(stored.model_dump_json()) == stored


@pytest.mark.parametrize(
    ("early_stop", "fragments"),
    [
        ({}, ("early_stop.pruner: ", "among asha, hyperband, median (got no pruner)")),
        ({"pruner": "pbt"}, ("early_stop.pruner: ", "(got pruner 'pbt')")),
        ({"pruner": ["asha"]}, ("early_stop.pruner: ", "among asha")),
        ("asha", ("early_stop: ", "must be an object with a pruner")),
        (
            {"pruner": "asha", "eta": 3},
            ("early_stop.eta: ", "unknown key 'eta' for early_stop (asha)"),
        ),
        (
            {"pruner": "asha", "reduction_factor": 1},
            ("early_stop.reduction_factor: ", "greater than or equal to 2"),
        ),
        ({"pruner": "median", "n_startup_trials": -1}, ("early_stop.n_startup_trials: ",)),
        (
            {"pruner": "hyperband", "brackets": 2},
            ("early_stop.brackets: ", "brackets needs max_resource"),
        ),
        (
            {"pruner": "hyperband", "min_resource": 1, "max_resource": 27, "brackets": 2},
            ("early_stop.min_resource: ", "not both"),
        ),
        (
            {"pruner": "hyperband", "max_resource": 2, "brackets": 1},
            ("early_stop.max_resource: ", "is below 1, which leaves no rung"),
        ),
        (
            {"pruner": "hyperband", "reduction_factor": 1},
            ("early_stop.reduction_factor: ", "greater than 1"),
        ),
        ({"pruner": "hyperband", "min_resource": 0}, ("early_stop.min_resource: ",)),
    ],
)
def test_rules_name_the_field(early_stop: Any, fragments: tuple[str, ...]) -> None:
    data = {"base": trial(), "space": {"optimizer.lr": [0.1]}, "early_stop": early_stop}
    assert_rejected(SweepSpec, data, *fragments)


def test_a_single_trial_has_nothing_to_compare_with() -> None:
    data = {"base": trial(), "early_stop": {"pruner": "median"}}
    assert_rejected(SweepSpec, data, "early_stop: ", "method 'single' runs one trial")


@pytest.mark.parametrize(
    ("early_stop", "horizon", "rungs"),
    [
        # W&B's documented examples: min_iter 3 -> 3, 9, 27, 81; max_iter 27, s 2 -> 9, 3
        ({"min_resource": 3}, 100, [3, 9, 27, 81]),
        ({"max_resource": 27, "brackets": 2}, None, [3, 9]),
        ({"max_resource": 81, "brackets": 3, "reduction_factor": 3}, None, [3, 9, 27]),
        # stops before a rung below 1, whatever brackets says
        ({"max_resource": 81, "brackets": 10}, None, [1, 3, 9, 27]),
        ({"max_resource": 100, "brackets": 3, "reduction_factor": 2}, None, [12, 25, 50]),
        ({"max_resource": 10, "brackets": 2, "reduction_factor": 2.5}, None, [1, 4]),
        ({"min_resource": 1, "reduction_factor": 2}, 20, [1, 2, 4, 8, 16]),
        ({"min_resource": 2, "reduction_factor": 1.5}, 10, [2, 3, 4, 6]),
        ({"min_resource": 5, "max_resource": 50, "reduction_factor": 3}, None, [5, 15, 45]),
        ({}, 10, [1, 3, 9]),
        ({"max_resource": 27, "brackets": 2}, 9, [3]),
    ],
)
def test_hyperband_rungs(early_stop: dict[str, Any], horizon: int | None, rungs: list[int]) -> None:
    assert hyperband_rungs(HyperbandStop(**early_stop), horizon) == rungs


def test_rungs_counting_up_end_without_a_horizon() -> None:
    rungs = hyperband_rungs(HyperbandStop(min_resource=1, reduction_factor=1.01))
    assert len(rungs) <= 100 and rungs == sorted(set(rungs))
    huge = hyperband_rungs(HyperbandStop(min_resource=2**31 - 1, reduction_factor=1000))
    assert huge == [2**31 - 1]
