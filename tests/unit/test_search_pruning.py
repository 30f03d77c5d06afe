"""Each pruner on synthetic intermediate values: who is stopped, where, and the reason."""

from __future__ import annotations

import math
from typing import Any

import pytest

from services.domain.records import PastTrial, TrialStatus
from services.search.pruners import Decision, pruner_for
from services.specs.early_stop import AshaStop, HyperbandStop, MedianStop

S, P, R = TrialStatus.SUCCEEDED, TrialStatus.PRUNED, TrialStatus.RUNNING


def past(number: int, status: TrialStatus, *values: float) -> PastTrial:
    return PastTrial(number=number, status=status, values=tuple(values))


def decide(spec: Any, values: tuple[float, ...], others: list[PastTrial], **kw: Any) -> str | None:
    goal = kw.pop("goal", "minimize")
    decision = Decision(
        metric="val_loss",
        goal=goal,
        step=kw.pop("step", 100 * len(values)),
        values=values,
        others=others,
    )
    return pruner_for(spec).prune(decision)


# -- asha ------------------------------------------------------------------------------------
ASHA = AshaStop(min_resource=1, reduction_factor=2)  # rungs at evaluations 1, 2, 4, 8
ASHA_OTHERS = [
    past(0, S, 1.0, 0.8, 0.6, 0.5, 0.45),
    past(1, P, 2.0),  # pruned at rung 0
    past(2, R, 0.9, 0.7),
    past(3, TrialStatus.FAILED),  # says nothing
]


def test_asha_prunes_below_the_top_half_at_the_first_rung() -> None:
    reason = decide(ASHA, (1.5,), ASHA_OTHERS, step=99)
    # At rung 0: 1.0, 2.0, 0.9 and 1.5; the top 1/2 of 4 is 0.9 and 1.0.
    assert reason == (
        "pruned by asha at step 99 (rung 0, evaluation 1): val_loss 1.5 not in the top 1/2 "
        "of 4 trials at that rung"
    )
    assert decide(ASHA, (1.0,), ASHA_OTHERS) is None


def test_asha_compares_at_the_second_rung_with_those_that_reached_it() -> None:
    # Rung 1 (evaluation 2): 0.8 and 0.7 reached it; with 0.9 the top 1/2 of 3 is 0.7 alone.
    reason = decide(ASHA, (0.95, 0.9), ASHA_OTHERS, step=200)
    assert reason is not None
    assert reason.startswith("pruned by asha at step 200 (rung 1, evaluation 2): val_loss 0.9 ")
    assert "of 3 trials" in reason
    assert decide(ASHA, (0.95, 0.65), ASHA_OTHERS) is None
    # Evaluation 3 is no rung: nothing is decided there, however bad.
    assert decide(ASHA, (0.95, 0.65, 9.0), ASHA_OTHERS) is None


def test_asha_the_first_trial_at_a_rung_goes_on() -> None:
    assert decide(ASHA, (5.0,), []) is None


def test_asha_maximize_keeps_the_largest() -> None:
    others = [past(0, S, 0.9, 0.95), past(1, S, 0.8), past(2, R, 0.85)]
    assert decide(ASHA, (0.5,), others, goal="maximize") is not None
    assert decide(ASHA, (0.9,), others, goal="maximize") is None


def test_asha_a_nan_at_a_rung_is_pruned_and_a_nan_of_another_is_the_worst() -> None:
    reason = decide(ASHA, (math.nan,), ASHA_OTHERS)
    assert reason is not None and "val_loss is nan" in reason
    # Another trial's NaN ranks last rather than confusing the sort.
    others = [past(0, P, math.nan), past(1, S, 1.0)]
    assert decide(ASHA, (0.99,), others) is None


def test_asha_min_early_stopping_rate_moves_the_first_rung() -> None:
    spec = AshaStop(min_resource=1, reduction_factor=3, min_early_stopping_rate=1)  # 3, 9
    others = [past(0, S, 1, 1, 0.1), past(1, S, 1, 1, 0.2), past(2, S, 1, 1, 0.3)]
    assert decide(spec, (9.0, 9.0), others) is None  # evaluation 2: below the first rung
    reason = decide(spec, (9.0, 9.0, 9.0), others)
    assert reason is not None and "(rung 0, evaluation 3)" in reason


# -- median ----------------------------------------------------------------------------------
MEDIAN = MedianStop(n_startup_trials=2)


def test_median_prunes_a_trial_worse_than_the_median_of_finished_ones() -> None:
    others = [past(0, S, 1.0, 0.5), past(1, S, 1.2, 0.7), past(2, R, 0.1, 0.1)]
    reason = decide(MEDIAN, (1.3,), others, step=10)
    assert reason == (
        "pruned by median at step 10 (evaluation 1): best val_loss so far 1.3 is worse than "
        "the median 1.1 of 2 finished trials at that evaluation"
    )
    assert decide(MEDIAN, (1.05,), others) is None
    # The best value so far counts: a bad second evaluation after a good first one stays.
    assert decide(MEDIAN, (0.5, 0.9), others) is None


def test_median_waits_for_its_startup_trials_and_warmup() -> None:
    one_finished = [past(0, S, 1.0), past(1, R, 0.1), past(2, P, 0.2)]
    assert decide(MEDIAN, (9.0,), one_finished) is None
    warm = MedianStop(n_startup_trials=1, n_warmup_evals=3)
    assert decide(warm, (9.0, 9.0), one_finished) is None
    assert decide(MedianStop(n_startup_trials=1), (9.0,), one_finished) is not None


# -- hyperband (W&B) -------------------------------------------------------------------------
def test_hyperband_stops_the_runs_wandb_stops_in_its_own_example() -> None:
    # W&B's hyperband_stop_runs example: max_iter 5, s 2, eta 2 -> bands 1 and 2; runs b and
    # c are stopped, d goes on.
    spec = HyperbandStop(max_resource=5, brackets=2, reduction_factor=2)
    a, e = past(0, S, 10, 9), past(4, S, 10, 6, 6)
    b, c, d = (10.0, 10.0), (10.0, 8.0, 8.0), (10.0, 7.0, 7.0)
    runs = {"b": b, "c": c, "d": d}

    def others_of(name: str) -> list[PastTrial]:
        mates = [past(i + 1, R, *v) for i, (n, v) in enumerate(runs.items()) if n != name]
        return [a, e, *mates]

    reason_b = decide(spec, b, others_of("b"), step=20)
    assert reason_b == (
        "pruned by hyperband at step 20 (rung 0, evaluation 2): best val_loss so far 10 is "
        "worse than 8, the cut-off for the best 1/2 of 5 trials at band 1 (their "
        "evaluation 2)"
    )
    reason_c = decide(spec, c, others_of("c"))
    assert reason_c is not None and "(rung 1, evaluation 3)" in reason_c
    assert "worse than 7," in reason_c
    assert decide(spec, d, others_of("d")) is None


def test_hyperband_min_resource_form_and_maximize() -> None:
    spec = HyperbandStop(min_resource=1, reduction_factor=3)  # bands 1, 3, 9, ...
    others = [past(i, S, 0.5, v) for i, v in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])]
    assert decide(spec, (0.5,), others, goal="maximize") is None  # no band passed yet
    # Band 1 values 0.9 .. 0.5 and 0.55: the cut-off ranks int(6/3) = 2nd from the best.
    assert decide(spec, (0.5, 0.55), others, goal="maximize") is not None
    assert decide(spec, (0.5, 0.75), others, goal="maximize") is None


def test_hyperband_strict_judges_a_trial_at_the_band_not_at_its_best() -> None:
    # Band 1 (evaluation 2): 0.5, 0.6, 0.7 and the trial's own; the cut-off ranks
    # int(4 / 2) = 2nd from the best. The trial was best of all once (0.4), then fell back.
    others = [past(0, S, 1.0, 0.5), past(1, S, 1.0, 0.6), past(2, S, 1.0, 0.7)]
    values = (0.4, 0.9)
    lenient = HyperbandStop(min_resource=1, reduction_factor=2)
    assert decide(lenient, values, others) is None  # its best, 0.4, is in the top half
    strict = HyperbandStop(min_resource=1, reduction_factor=2, strict=True)
    assert decide(strict, values, others, step=20) == (
        "pruned by hyperband at step 20 (rung 0, evaluation 2): val_loss at that band 0.9 is "
        "worse than 0.7, the cut-off for the best 1/2 of 4 trials at band 1 (their "
        "evaluation 2)"
    )
    # A trial good at the band goes on either way; and strict stops every trial the
    # lenient rule stops (a value at the band is never better than the best so far).
    assert decide(strict, (0.9, 0.55), others) is None
    assert decide(lenient, (1.0, 0.8), others) is not None
    assert decide(strict, (1.0, 0.8), others) is not None


def test_hyperband_strict_maximize() -> None:
    others = [past(0, S, 0.1, 0.9), past(1, S, 0.1, 0.8), past(2, S, 0.1, 0.7)]
    strict = HyperbandStop(min_resource=1, reduction_factor=2, strict=True)
    assert decide(strict, (0.95, 0.6), others, goal="maximize") is not None
    assert decide(strict, (0.1, 0.85), others, goal="maximize") is None


@pytest.mark.parametrize("spec", [ASHA, MEDIAN, HyperbandStop(min_resource=1)])
def test_no_decision_without_evaluations_of_others_breaks(spec: Any) -> None:
    assert decide(spec, (0.3,), []) is None
