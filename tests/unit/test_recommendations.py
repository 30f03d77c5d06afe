"""Learning an lr from past trials: matching, batch size rules, bounds, too little history."""

from __future__ import annotations

import math
from typing import Any

import pytest

from services.analysis.recommendations import build_query
from services.analyzer.lr_history import HistoryRun, LrQuery, recommend_from_history
from services.domain.errors import InvalidInput

QUERY = LrQuery(
    task="digits", model="mlp", optimizer="sgd", batch_size=32, schedule="constant", rule="linear"
)


def run(
    trial_id: int,
    lr: float,
    final: float,
    *,
    batch_size: int | str = 32,
    schedule: str = "constant",
    status: str = "succeeded",
    kinds: frozenset[str] | None = None,
    metric: str = "val_loss",
    model: str = "mlp",
    lr_scaling: dict[str, Any] | None = None,
    train_loss: float = 0.5,
) -> HistoryRun:
    spec: dict[str, Any] = {
        "task": {"name": "digits", "model": model},
        "optimizer": {"name": "sgd", "lr": lr},
        "schedule": {"name": schedule},
        "batch_size": batch_size,
    }
    if lr_scaling is not None:
        spec["lr_scaling"] = lr_scaling
    return HistoryRun(
        trial_id=trial_id,
        sweep_id=1,
        status=status,
        spec=spec,
        metric=metric,
        goal="minimize",
        final=final,
        final_train_loss=train_loss,
        kinds=kinds,
    )


def geomean(*xs: float) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def test_the_best_third_of_exact_matches_gives_the_lr_and_range() -> None:
    runs = [
        run(1, 0.001, 1.9),
        run(2, 0.01, 0.9),
        run(3, 0.03, 0.30),
        run(4, 0.1, 0.20),
        run(5, 0.3, 0.25),
        run(6, 1.0, 0.8),
    ]
    rec = recommend_from_history(QUERY, runs)
    assert rec.enough_history and rec.match == "exact" and rec.rule is None
    assert [e.trial_id for e in rec.ranked] == [4, 5, 3, 6, 2, 1]
    assert rec.top == (4, 5, 3)
    assert rec.lr == pytest.approx(geomean(0.1, 0.3, 0.03))
    assert (rec.low, rec.high) == (0.03, 0.3)
    assert rec.metric == "val_loss" and rec.goal == "minimize"
    assert "3 best of 6" in rec.reasoning and "Matched exactly" in rec.reasoning
    body = rec.to_dict()
    assert body["evidence"]["trial_ids"] == [4, 5, 3, 6, 2, 1]
    assert body["evidence"]["top_trial_ids"] == [4, 5, 3]


def test_diverged_trials_cap_the_range_and_slow_ones_floor_it() -> None:
    runs = [
        run(1, 0.003, 0.5),
        run(2, 0.01, 0.3),
        run(3, 0.3, 0.4),
        run(4, 0.1, 1.0, kinds=frozenset({"divergence"})),  # a cached finding
        run(5, 0.2, math.nan, status="pruned"),  # a non-finite end
        run(6, 0.005, 2.0, kinds=frozenset({"slow_convergence"})),
    ]
    rec = recommend_from_history(QUERY, runs)
    assert {e.trial_id for e in rec.diverged} == {4, 5}
    assert {e.trial_id for e in rec.too_slow} == {6}
    assert rec.top == (2, 3, 1)
    assert rec.high == 0.1 and rec.low == 0.005
    assert any("diverged" in n for n in rec.notes) and any("too slow" in n for n in rec.notes)


def test_other_batch_sizes_count_when_moved_by_the_rule() -> None:
    runs = [run(1, 0.2, 0.3, batch_size=64), run(2, 0.4, 0.2, batch_size=128), run(3, 0.1, 0.4)]
    linear = recommend_from_history(QUERY, runs)
    assert linear.match == "batch_size_adjusted" and linear.rule == "linear"
    moved = {e.trial_id: e.lr_at_batch_size for e in linear.ranked}
    assert moved == pytest.approx({1: 0.1, 2: 0.1, 3: 0.1})
    assert linear.lr == pytest.approx(0.1)
    assert "linear rule" in linear.reasoning
    sqrt = recommend_from_history(LrQuery("digits", "mlp", "sgd", 32, "constant", "sqrt"), runs)
    assert {e.trial_id: e.lr_at_batch_size for e in sqrt.ranked} == pytest.approx(
        {1: 0.2 / math.sqrt(2), 2: 0.2, 3: 0.1}
    )
    # The rule "none" moves nothing: those trials are not comparable.
    none = recommend_from_history(LrQuery("digits", "mlp", "sgd", 32, "constant", "none"), runs)
    assert not none.enough_history


def test_a_trials_own_lr_scaling_is_applied_before_moving_it() -> None:
    # lr 0.05 at base 32 with linear scaling trained at 0.1 at batch size 64.
    scaled = run(1, 0.05, 0.3, batch_size=64, lr_scaling={"rule": "linear"})
    rec = recommend_from_history(QUERY, [scaled, run(2, 0.05, 0.3), run(3, 0.05, 0.3)])
    first = next(e for e in rec.ranked if e.trial_id == 1)
    assert first.lr == pytest.approx(0.1) and first.lr_at_batch_size == pytest.approx(0.05)


def test_the_schedule_is_matched_before_any_schedule_counts() -> None:
    cosine = [run(i, 0.1, 0.3, schedule="cosine") for i in (1, 2, 3)]
    rec = recommend_from_history(QUERY, [*cosine, run(4, 0.01, 0.2)])
    assert rec.match == "any_schedule" and "any schedule" in rec.reasoning
    with_enough = [run(i, 0.01, 0.2) for i in (5, 6, 7)]
    assert recommend_from_history(QUERY, cosine + with_enough).match == "exact"


def test_too_little_history_gives_no_number_and_suggests_a_range_test() -> None:
    runs = [
        run(1, 0.1, 0.3),
        run(2, 0.2, 0.2),
        run(3, 0.1, 0.3, model="cnn"),  # another model
        run(4, 0.1, 0.3, status="failed"),
        run(5, 0.1, 0.3, status="pruned"),  # pruned by early stopping: not ranked
    ]
    rec = recommend_from_history(QUERY, runs)
    assert not rec.enough_history and rec.lr is None and rec.low is None
    assert "too little history" in rec.reasoning and "POST /lr-find" in rec.reasoning
    assert rec.to_dict()["evidence"]["count"] == 0


def test_trials_are_ranked_by_the_metric_most_of_them_share() -> None:
    runs = [
        run(1, 0.1, 0.3),
        run(2, 0.2, 0.2),
        run(3, 0.05, 0.4),
        run(4, 1.0, 0.99, metric="val_accuracy"),
    ]
    rec = recommend_from_history(QUERY, runs)
    assert rec.metric == "val_loss" and 4 not in {e.trial_id for e in rec.ranked}
    assert any("another metric" in n for n in rec.notes)


def test_equal_lrs_get_a_range_around_them() -> None:
    rec = recommend_from_history(QUERY, [run(i, 0.1, 0.3 + i / 100) for i in range(4)])
    assert rec.lr == pytest.approx(0.1)
    assert rec.low == pytest.approx(0.1 / 3) and rec.high == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ({"task": "mnist"}, "task", "valid: cartpole, digits"),
        ({"optimizer": "nag"}, "optimizer", "valid: adagrad, adam"),
        ({"model": "resnet"}, "model", "valid: mlp, cnn"),
        ({"task": "regression", "model": "mlp"}, "model", "no model choice"),
        ({"batch_size": "0"}, "batch_size", "integer >= 1"),
        ({"batch_size": "many"}, "batch_size", "integer >= 1"),
        ({"schedule": "inverse_sqrt"}, "schedule", "valid: constant"),
        ({"schedule": "range_test"}, "schedule", "ramps the lr"),
    ],
)
def test_query_errors_name_the_field(args: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build_query(**{"task": "digits", "optimizer": "sgd", **args})
    assert info.value.field == field and words in info.value.message


def test_the_query_fills_in_defaults_and_the_rule() -> None:
    assert build_query("digits", "adam").model == "mlp"
    assert build_query("digits", "adam").rule == "sqrt"
    assert build_query("digits", "sgd").rule == "linear"
    assert build_query("regression", "sgd", batch_size="full").batch_size == "full"
    assert build_query("digits", "sgd", rule="none").rule == "none"
