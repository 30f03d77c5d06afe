"""Sweep-level analysis on synthetic trials: best trial, lr sensitivity, stable range,
batch-size scaling, finding counts and the summary, with the edge cases (one trial, all
diverged, no lr variation, trials still running)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from services.analyzer import KINDS
from services.analyzer.sweep_diagnosis import (
    FindingBrief,
    MetricFigures,
    SweepDiagnosis,
    SweepTrial,
    analyze_sweep,
)
from services.analyzer.sweep_inputs import config_of
from services.analyzer.sweep_lr import lr_text

LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]


def trial(
    number: int,
    lr: float,
    final: float | None,
    kinds: tuple[str, ...] = ("healthy",),
    *,
    optimizer: str = "adam",
    batch_size: int | str = 64,
    status: str = "succeeded",
    step: int | None = None,
    low: float | None = None,
    spec: dict[str, Any] | None = None,
) -> SweepTrial:
    metrics = {}
    if final is not None:
        finite_low = final if math.isfinite(final) else 2.0
        metrics["val_loss"] = MetricFigures(
            last_step=999, final=final, low=finite_low if low is None else low, high=3.0
        )
        metrics["train_loss"] = MetricFigures(last_step=999, final=final, low=finite_low)
    severity = {"healthy": "info", "divergence": "critical"}
    return SweepTrial(
        trial_id=100 + number,
        number=number,
        status=status,
        params={"optimizer.lr": lr},
        spec=spec
        if spec is not None
        else {"optimizer": {"name": optimizer, "lr": lr}, "batch_size": batch_size},
        metrics=metrics,
        findings=tuple(FindingBrief(k, severity.get(k, "warning"), step) for k in kinds),
        last_step=999,
    )


def u_shaped(lr: float, best: float = 3e-3) -> float:
    """A final loss that is lowest at `best` and grows with log-distance from it."""
    return 0.2 + 0.1 * math.log10(lr / best) ** 2


def classic_sweep() -> list[SweepTrial]:
    """9 lrs with adam: the two smallest too slow, the two largest diverge, four overfit."""
    out = []
    for i, lr in enumerate(LRS):
        if lr <= 3e-4:
            out.append(trial(i, lr, u_shaped(lr), ("slow_convergence",)))
        elif lr >= 0.3:
            out.append(trial(i, lr, math.inf, ("divergence", "exploding_gradients"), step=400))
        elif lr <= 3e-2:
            out.append(trial(i, lr, u_shaped(lr), ("overfitting",), step=900))
        else:
            out.append(trial(i, lr, u_shaped(lr)))
    return out


def as_json(d: SweepDiagnosis) -> dict[str, Any]:
    # Strict JSON: a NaN or inf float left anywhere would raise here.
    return dict(json.loads(json.dumps(d.to_dict(), allow_nan=False)))


# -- the whole picture ----------------------------------------------------------------
def test_best_trial_and_its_config() -> None:
    d = analyze_sweep(classic_sweep())
    assert d.best is not None
    assert (d.best.number, d.best.config.lr, d.best.config.optimizer) == (3, 3e-3, "adam")
    assert d.best.config.batch_size == 64 and d.best.final == pytest.approx(0.2)
    assert not d.provisional and d.best.provisional is False
    body = as_json(d)["best"]
    assert body["params"] == {"optimizer.lr": 3e-3} and body["lr"] == 3e-3


def test_sensitivity_is_sorted_by_lr_with_the_final_and_best_metric() -> None:
    trials = classic_sweep()
    d = analyze_sweep(list(reversed(trials)))  # input order does not matter
    (group,) = d.groups
    assert [p.lr for p in group.points] == LRS
    assert [p.outcome for p in group.points] == ["too_slow"] * 2 + ["ok"] * 5 + ["diverged"] * 2
    finals = [p["final"] for p in as_json(d)["sensitivity"][0]["points"]]
    assert finals[-1] == "Infinity" and finals[3] == pytest.approx(0.2)


def test_stable_range_lies_between_too_slow_and_diverging() -> None:
    stable = analyze_sweep(classic_sweep()).groups[0].stable
    assert (stable.low, stable.high) == (3e-4, 3e-1)
    assert stable.lrs == (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    assert "lrs <= 3e-4 were too slow" in stable.note and "lrs >= 3e-1 diverged" in stable.note


def test_finding_counts_list_every_kind() -> None:
    counts = analyze_sweep(classic_sweep()).finding_counts
    assert counts["overfitting"] == 4 and counts["divergence"] == 2
    assert counts["slow_convergence"] == 2 and counts["healthy"] == 1
    assert counts["plateau"] == 0 and len(counts) == len(KINDS)


def test_summary_says_what_to_do_next() -> None:
    d = analyze_sweep(classic_sweep())
    text = d.summary
    assert text.startswith("Best val_loss 0.2 from trial #3: lr 3e-3 with adam, batch size 64")
    assert "lrs >= 3e-1 diverge" in text and "lrs <= 3e-4 are too slow" in text
    assert "narrow the next sweep to log-uniform [1e-3, 1e-2]" in text
    assert "overfitting in 4 of 9 trials after step ~900: add weight_decay or stop early" in text
    # The range already explains the diverging and too-slow trials: no second clause.
    assert "divergence in" not in text and "slow convergence in" not in text
    assert "exploding gradients in" not in text
    assert as_json(d)["advice"] == list(d.advice)


# -- open ends and conflicts ------------------------------------------------------------
def test_a_range_the_sweep_never_reached_stays_open() -> None:
    trials = [trial(i, lr, u_shaped(lr, best=1e-4)) for i, lr in enumerate([1e-4, 1e-3, 1e-2])]
    d = analyze_sweep(trials)
    stable = d.groups[0].stable
    assert stable.low is None and stable.high is None and stable.lrs == (1e-4, 1e-3, 1e-2)
    assert "the lower end is open" in stable.note and "the upper end is open" in stable.note
    body = as_json(d)["sensitivity"][0]["stable_range"]
    assert body["low_bounded"] is False and body["high_bounded"] is False
    # The best lr is the smallest tried: the next range reaches a decade below it.
    assert "log-uniform [1e-5, 1e-3] (the best lr is the smallest tried" in d.summary


def test_too_slow_above_a_diverging_lr_is_reported_as_no_range() -> None:
    trials = [
        trial(0, 1e-3, math.nan, ("divergence",)),
        trial(1, 1e-2, 0.5, ("plateau",)),
        trial(2, 1e-1, 0.4),
    ]
    stable = analyze_sweep(trials).groups[0].stable
    assert (stable.low, stable.high, stable.lrs) == (1e-2, 1e-3, ())
    assert "lr alone does not separate them" in stable.note


def test_problems_outside_the_range_ends_are_still_reported() -> None:
    trials = classic_sweep()
    # An ok trial in the middle of the range whose gradients exploded: not explained.
    trials[4] = trial(4, 1e-2, u_shaped(1e-2), ("exploding_gradients",), step=700)
    text = analyze_sweep(trials).summary
    assert "exploding gradients in 1 of 9 trials after step ~700: clip gradients" in text


def test_a_loss_that_ended_non_finite_counts_as_diverged_without_a_finding() -> None:
    t = trial(0, 1.0, math.nan, ())
    assert t.outcome() == "diverged"
    assert trial(1, 1e-3, 0.3, ("underfitting",)).outcome() == "too_slow"


# -- blow-ups that ended finite ---------------------------------------------------------
def digits_trial(
    number: int,
    lr: float,
    val: tuple[float, float, float, float],
    *,
    status: str = "succeeded",
    stop_reason: str | None = None,
) -> SweepTrial:
    """SGD with momentum on digits, no finding but healthy: val_loss as (first, low, high,
    final), train_loss starting at ln(10) as an untrained classifier's does."""
    first, low, high, final = val
    return SweepTrial(
        trial_id=100 + number,
        number=number,
        status=status,
        params={"optimizer.lr": lr},
        spec={"optimizer": {"name": "sgd", "lr": lr, "momentum": 0.9}, "batch_size": 32},
        metrics={
            "val_loss": MetricFigures(999, final, low=low, high=high, first=first),
            "train_loss": MetricFigures(999, min(final, 1.0), first=2.30),
        },
        findings=(FindingBrief("healthy", "info"),),
        last_step=999,
        stop_reason=stop_reason,
    )


def blown_up_sweep() -> list[SweepTrial]:
    """lr 0.3's val_loss went 1.04 -> 26 and lr 1 was stopped by the runner's blow-up
    stop, both with finite losses and no divergence finding."""
    return [
        digits_trial(0, 0.01, (0.9, 0.20, 0.9, 0.20)),
        digits_trial(1, 0.03, (0.5, 0.12, 0.5, 0.12)),
        digits_trial(2, 0.1, (0.4, 0.10, 0.4, 0.11)),
        digits_trial(3, 0.3, (1.04, 1.04, 26.0, 26.0)),
        digits_trial(
            4,
            1.0,
            (18.5, 18.5, 18.5, 18.5),
            status="pruned",
            stop_reason="diverged: smoothed train_loss 51.2 is 22 x its best 2.3 at step 18",
        ),
    ]


def test_a_trial_stopped_for_divergence_counts_as_diverged() -> None:
    (*_, stopped) = blown_up_sweep()
    assert stopped.outcome() == "diverged"
    # Pruned for another reason (a pruner, the live analyzer's overfitting stop): not so.
    other = digits_trial(
        4, 1.0, (0.4, 0.1, 0.4, 0.1), status="pruned", stop_reason="pruned by asha"
    )
    assert other.outcome() == "ok"


def test_a_val_loss_far_above_its_best_and_start_counts_as_diverged() -> None:
    assert blown_up_sweep()[3].outcome() == "diverged"  # 26 > 10 x 1.04 and > 2 x 2.3
    # It rose 10x above its best but stayed near where it started: the loss had fallen near
    # zero and came back (a warm restart, a cyclic peak), no blow-up.
    assert digits_trial(0, 0.1, (1.9, 0.017, 1.96, 0.02)).outcome() == "ok"
    # Far above its start but hardly above its best: a run that never trained well.
    assert digits_trial(0, 0.1, (4.0, 4.0, 5.0, 5.0)).outcome() == "ok"
    # Without a start level (no first point) nothing is judged.
    t = digits_trial(0, 0.3, (1.04, 1.04, 26.0, 26.0))
    bare = dataclasses.replace(
        t, metrics={"val_loss": dataclasses.replace(t.metrics["val_loss"], first=None)}
    )
    assert bare.outcome() == "ok"


def test_the_stable_range_stops_below_every_lr_that_blew_up() -> None:
    d = analyze_sweep(blown_up_sweep())
    (group,) = d.groups
    assert [p.outcome for p in group.points] == ["ok"] * 3 + ["diverged"] * 2
    assert group.stable.high == 0.3 and group.stable.lrs == (0.01, 0.03, 0.1)
    assert "lrs >= 3e-1 diverged" in group.stable.note


def test_advice_never_points_at_an_lr_that_blew_up() -> None:
    trials = blown_up_sweep()
    d = analyze_sweep(trials)
    assert d.best is not None and d.best.config.lr == 0.1
    # The next lr up (0.3) blew up: the narrowed range stops halfway (in log) to it.
    assert "lrs >= 3e-1 diverge" in d.summary
    assert "narrow the next sweep to log-uniform [3e-2, 1.7e-1]" in d.summary
    # A trial that blew up and came back down to the lowest final val_loss is not the
    # best: its lr is no place to go.
    recovered = digits_trial(3, 0.3, (1.04, 0.05, 26.0, 0.05))
    d = analyze_sweep([*trials[:3], recovered])
    assert d.best is not None and d.best.config.lr == 0.1
    assert all(b.lr != 0.3 for fit in d.scaling for b in fit.points)


# -- batch-size scaling -----------------------------------------------------------------
def scaling_sweep(rule_slope: float) -> list[SweepTrial]:
    """At each batch size the loss is lowest at 1e-3 * (bs/32)^slope, on a grid of lrs."""
    out, n = [], 0
    for bs in (32, 128, 512):
        best = 1e-3 * (bs / 32) ** rule_slope
        for factor in (0.25, 0.5, 1.0, 2.0, 4.0):
            lr = best * factor
            out.append(trial(n, lr, u_shaped(lr, best), batch_size=bs))
            n += 1
    return out


@pytest.mark.parametrize(("slope", "rule"), [(1.0, "linear"), (0.5, "sqrt")])
def test_best_lr_per_batch_size_follows_the_closer_scaling_rule(slope: float, rule: str) -> None:
    d = analyze_sweep(scaling_sweep(slope))
    (fit,) = d.scaling
    assert [p.batch_size for p in fit.points] == [32, 128, 512]
    assert fit.slope == pytest.approx(slope, abs=1e-6) and fit.rule == rule
    assert not any(p.at_edge for p in fit.points)
    assert f"closer to the {rule} rule" in d.summary and f"lr_scaling.rule={rule}" in d.summary
    assert [g.batch_size for g in d.groups] == [32, 128, 512]  # grouped per batch size


def test_one_batch_size_is_not_enough_for_a_scaling_rule() -> None:
    (fit,) = analyze_sweep(classic_sweep()).scaling
    assert fit.slope is None and fit.rule is None
    assert fit.note.startswith("not enough batch sizes")


def test_a_best_lr_at_the_edge_of_the_grid_makes_the_slope_uncertain() -> None:
    trials = [
        trial(0, 1e-3, 0.30, batch_size=32),
        trial(1, 1e-2, 0.25, batch_size=32),  # best at the largest lr tried
        trial(2, 1e-3, 0.40, batch_size=256),
        trial(3, 1e-2, 0.20, batch_size=256),
        trial(4, 1e-1, 0.30, batch_size=256),
    ]
    (fit,) = analyze_sweep(trials).scaling
    assert [p.at_edge for p in fit.points] == [True, False]
    assert "edge of the lrs tried for batch size 32" in fit.note


def test_lr_scaling_makes_the_effective_lr_the_one_analysed() -> None:
    spec = {
        "optimizer": {"name": "sgd", "lr": 0.1},
        "batch_size": 128,
        "lr_scaling": {"rule": "linear", "base_batch_size": 32},
    }
    config = config_of(spec)
    assert (config.lr, config.spec_lr, config.batch_size) == (pytest.approx(0.4), 0.1, 128)
    assert config_of({}).lr is None and config_of({"batch_size": "full"}).batch_size == "full"


def test_optimizers_are_grouped_apart() -> None:
    trials = [
        trial(0, 1e-3, 0.3, optimizer="adam"),
        trial(1, 1e-1, 0.4, optimizer="sgd"),
        trial(2, 1e-2, 0.2, optimizer="adam"),
    ]
    groups = analyze_sweep(trials).groups
    assert [(g.optimizer, [p.number for p in g.points]) for g in groups] == [
        ("adam", [0, 2]),
        ("sgd", [1]),
    ]


# -- edge cases -------------------------------------------------------------------------
def test_one_trial() -> None:
    d = analyze_sweep([trial(0, 1e-2, 0.3)])
    assert d.best is not None and d.best.number == 0
    assert d.groups[0].stable.lrs == (1e-2,)
    assert "every adam, batch size 64 trial used lr 1e-2" in d.summary
    assert "log-uniform [1e-3, 1e-1]" in d.summary
    assert "all 1 analysed trials are healthy" in d.summary


def test_every_trial_diverged() -> None:
    trials = [trial(i, lr, math.inf, ("divergence",), step=50) for i, lr in enumerate(LRS[4:])]
    d = analyze_sweep(trials)
    assert d.best is None and d.groups[0].stable.high == 1e-2
    assert d.summary.startswith(
        "No trial ended with a finite val_loss without diverging, so none can be ranked"
    )
    assert "every lr tried with adam, batch size 64 diverged (smallest 1e-2)" in d.summary
    assert "log-uniform [1e-4, 3.3e-3]" in d.summary
    assert as_json(d)["best"] is None


def test_no_lr_variation_asks_for_an_lr_sweep() -> None:
    trials = [trial(i, 1e-2, 0.3 + i / 10, batch_size=bs) for i, bs in enumerate((32, 64))]
    d = analyze_sweep(trials)
    assert d.best is not None and d.best.number == 0
    assert "trial used lr 1e-2: sweep optimizer.lr" in d.summary
    (fit,) = d.scaling  # one lr per batch size: no best lr to compare
    assert fit.slope is None and "(have: none)" in fit.note


def test_running_trials_make_it_provisional() -> None:
    trials = [
        *classic_sweep()[:5],
        trial(5, 3e-2, 0.1, status="running"),
        SweepTrial(trial_id=200, number=6, status="queued"),
    ]
    d = analyze_sweep(trials)
    assert d.provisional
    assert d.best is not None and d.best.number == 5 and d.best.provisional
    assert d.trial_counts == {
        "total": 7,
        "with_data": 6,
        "queued": 1,
        "running": 1,
        "succeeded": 5,
    }
    assert "2 of 7 trials are still queued or running: this analysis is provisional" in d.summary
    assert all(p.trial_id != 200 for g in d.groups for p in g.points)  # no data, no point


def test_nothing_logged_yet() -> None:
    d = analyze_sweep([SweepTrial(trial_id=1, number=0, status="queued")])
    assert d.provisional and d.best is None and d.groups == ()
    assert d.summary == "No trial has logged metrics yet (1 queued or running): nothing to analyse."


def test_a_maximized_metric_ranks_the_highest_final() -> None:
    trials = [
        SweepTrial(
            trial_id=i,
            number=i,
            status="succeeded",
            spec={"optimizer": {"name": "sgd", "lr": lr}, "batch_size": 32},
            metrics={"val_accuracy": MetricFigures(99, acc, low=0.1, high=max(acc, 0.95))},
            findings=(),
        )
        for i, (lr, acc) in enumerate([(1e-3, 0.80), (1e-2, 0.90), (1e-1, math.nan)])
    ]
    d = analyze_sweep(trials, metric="val_accuracy", goal="maximize")
    assert d.best is not None and d.best.number == 1 and d.best.best == 0.95
    assert as_json(d)["sensitivity"][0]["points"][2]["final"] == "NaN"
    with pytest.raises(ValueError, match="goal must be"):
        analyze_sweep(trials, goal="largest")  # type: ignore[arg-type]


def test_lr_text_reads_as_powers_of_ten() -> None:
    assert [lr_text(x) for x in (3e-3, 2.5e-4, 1.0, 0.3, 10.0)] == [
        "3e-3",
        "2.5e-4",
        "1",
        "3e-1",
        "1e1",
    ]
