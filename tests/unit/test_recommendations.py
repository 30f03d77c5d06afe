"""Learning an lr from past trials: matching, batch size rules, bounds, too little history."""

from __future__ import annotations

import dataclasses
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
    optimizer: dict[str, Any] | None = None,
    budget: dict[str, int] | None = None,
    last_step: int | None = None,
) -> HistoryRun:
    spec: dict[str, Any] = {
        "task": {"name": "digits", "model": model},
        "optimizer": {"name": "sgd", "lr": lr, **(optimizer or {})},
        "schedule": {"name": schedule},
        "batch_size": batch_size,
        "budget": budget or {"epochs": 10},
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
        last_step=last_step,
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


# -- optimizer knobs and budget -------------------------------------------------------------
SGD = dataclasses.replace(QUERY, optimizer_params={"momentum": 0.0, "nesterov": False})
HEAVY = {"momentum": 0.9}
EVERY_PART = ("task", "model", "optimizer", "momentum", "nesterov", "batch_size", "schedule")


def plain_and_heavy() -> list[HistoryRun]:
    """Plain SGD is best near lr 0.1, with momentum 0.9 near 0.01 (the same step)."""
    plain = [run(1, 0.03, 0.5), run(2, 0.1, 0.2), run(3, 0.3, 0.4)]
    heavy = [
        run(i + 10, lr, f, optimizer=HEAVY)
        for i, (lr, f) in enumerate([(0.003, 0.5), (0.01, 0.2), (0.03, 0.4)])
    ]
    return plain + heavy


def test_momentum_is_matched_never_pooled() -> None:
    plain = recommend_from_history(SGD, plain_and_heavy())
    assert plain.match == "exact" and {e.trial_id for e in plain.ranked} == {1, 2, 3}
    assert plain.matched_on == EVERY_PART
    assert plain.widened == () and "momentum 0, nesterov false" in plain.reasoning
    heavy_query = dataclasses.replace(SGD, optimizer_params={"momentum": 0.9, "nesterov": False})
    heavy = recommend_from_history(heavy_query, plain_and_heavy())
    assert {e.trial_id for e in heavy.ranked} == {10, 11, 12}
    assert heavy.lr == pytest.approx(geomean(0.003, 0.01, 0.03))
    assert heavy.to_dict()["trials"][0]["optimizer_params"] == {"momentum": 0.9, "nesterov": False}
    # Only heavy-ball trials: plain SGD gets no number from them, at any widening.
    alone = recommend_from_history(SGD, plain_and_heavy()[3:])
    assert not alone.enough_history


def test_a_nearby_momentum_is_used_only_when_said() -> None:
    runs = [
        run(1, 0.01, 0.3, optimizer={"momentum": 0.85}),
        run(2, 0.02, 0.2, optimizer={"momentum": 0.95}),
        run(3, 0.01, 0.25, optimizer={"momentum": 0.95, "nesterov": True}),
    ]
    query = dataclasses.replace(SGD, optimizer_params={"momentum": 0.9, "nesterov": False})
    rec = recommend_from_history(query, runs)
    assert rec.enough_history and rec.match == "optimizer_near"
    # All at batch size 32: that part still matched, and no batch size rule was needed.
    assert rec.matched_on == ("task", "model", "optimizer", "batch_size", "schedule")
    assert rec.rule is None
    assert rec.widened == (
        "momentum: too few trials with momentum 0.9; used momentum in [0.8, 0.95] "
        "(the trials had 0.85, 0.95)",
        "nesterov: too few trials with nesterov false; trials with and without it count "
        "(the trials had false, true)",
    )
    assert "Widened: " in rec.reasoning and "[0.8, 0.95]" in rec.reasoning
    # 0.5 is no neighbour of 0.9: its steps are 5x shorter.
    far = [run(i, 0.05, 0.3, optimizer={"momentum": 0.5}) for i in (4, 5, 6)]
    assert not recommend_from_history(query, far).enough_history


def test_adams_betas_are_matched_and_widened_by_their_horizons() -> None:
    adam = LrQuery(
        "digits", "mlp", "adam", 32, "constant", "sqrt", optimizer_params={"betas": [0.9, 0.999]}
    )

    def adam_run(i: int, betas: list[float]) -> HistoryRun:
        r = run(i, 0.001 * i, 0.3 - i / 100)
        spec = {**r.spec, "optimizer": {"name": "adam", "lr": 0.001 * i, "betas": betas}}
        return dataclasses.replace(r, spec=spec)

    same = [adam_run(i, [0.9, 0.999]) for i in (1, 2, 3)]
    assert recommend_from_history(adam, same).match == "exact"
    near = [adam_run(i, [0.85, 0.998]) for i in (1, 2, 3)]
    rec = recommend_from_history(adam, near)
    assert rec.match == "optimizer_near"
    assert any(
        w.startswith(
            "betas: too few trials with betas (0.9, 0.999); used beta1 in [0.8, 0.95], "
            "beta2 in [0.998, 0.9995]"
        )
        for w in rec.widened
    )
    assert not recommend_from_history(
        adam, [adam_run(i, [0.5, 0.9]) for i in (1, 2, 3)]
    ).enough_history


def short_and_long() -> list[HistoryRun]:
    """200-step trials are best near lr 0.3, 3,000-step ones near 0.03."""
    short = [
        run(i, lr, f, budget={"max_steps": 200})
        for i, (lr, f) in enumerate([(0.1, 0.5), (0.3, 0.2), (1.0, 0.4)], start=1)
    ]
    long = [
        run(i, lr, f, budget={"max_steps": 3000})
        for i, (lr, f) in enumerate([(0.01, 0.5), (0.03, 0.2), (0.1, 0.4)], start=10)
    ]
    return short + long


def test_the_budget_is_matched_within_a_factor_of_two_when_asked() -> None:
    short = recommend_from_history(dataclasses.replace(SGD, max_steps=300), short_and_long())
    assert {e.trial_id for e in short.ranked} == {1, 2, 3} and "budget" in short.matched_on
    assert "budget max_steps 300 (trials of 150 to 600 steps)" in short.reasoning
    long = recommend_from_history(dataclasses.replace(SGD, max_steps=2000), short_and_long())
    assert {e.trial_id for e in long.ranked} == {10, 11, 12}
    assert long.lr == pytest.approx(geomean(0.03, 0.1, 0.01))
    # Not asked: pooled, and the answer says how far apart the lengths were.
    pooled = recommend_from_history(SGD, short_and_long())
    assert len(pooled.ranked) == 6 and "budget" not in pooled.matched_on
    assert "no budget asked: the trials trained 200 to 3000 steps" in " ".join(pooled.notes)


def test_a_budget_with_too_few_trials_is_widened_and_says_so() -> None:
    rec = recommend_from_history(dataclasses.replace(SGD, max_steps=50), short_and_long())
    assert rec.match == "any_budget" and "budget" not in rec.matched_on
    assert (
        "budget: too few trials near max_steps 50 (trials of 25 to 100 steps); trials of any "
        "length count (they trained 200 to 3000 steps)"
    ) in rec.widened


def test_an_epochs_budget_matches_epochs_and_its_steps_count_once_it_ran_out() -> None:
    runs = [run(i, 0.1 * i, 0.3, budget={"epochs": 10}, last_step=449) for i in (1, 2, 3)]
    assert recommend_from_history(dataclasses.replace(SGD, epochs=8), runs).match == "exact"
    # 450 steps trained: a steps budget of 500 matches them too.
    assert recommend_from_history(dataclasses.replace(SGD, max_steps=500), runs).match == "exact"
    far = recommend_from_history(dataclasses.replace(SGD, epochs=50), runs)
    assert far.match == "any_budget"


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ({"optimizer": "adam", "momentum": 0.9}, "momentum", "matched settings: betas"),
        ({"optimizer": "adagrad", "betas": "0.9,0.99"}, "betas", "it has none"),
        ({"nesterov": True}, "nesterov", "nesterov requires momentum > 0"),
        ({"momentum": -0.1}, "momentum", "greater than or equal to 0"),
        ({"optimizer": "adam", "betas": "0.9"}, "betas", "two numbers"),
        ({"optimizer": "adam", "betas": "1.5,0.9"}, "betas", "less than 1"),
        ({"max_steps": 100, "epochs": 3}, "epochs", "not both"),
    ],
)
def test_knob_and_budget_errors_name_the_field(
    args: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        build_query(**{"task": "digits", "optimizer": "sgd", **args})
    assert info.value.field == field and words in info.value.message


def test_the_query_fills_in_the_optimizers_own_knobs() -> None:
    assert build_query("digits", "sgd").optimizer_params == {"momentum": 0.0, "nesterov": False}
    assert build_query("digits", "adamw").optimizer_params == {"betas": [0.9, 0.999]}
    assert build_query("digits", "lbfgs").optimizer_params == {}
    heavy = build_query("digits", "sgd", momentum=0.9, nesterov=True, max_steps=500)
    assert heavy.optimizer_params == {"momentum": 0.9, "nesterov": True}
    assert heavy.max_steps == 500 and heavy.epochs is None
