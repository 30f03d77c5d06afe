"""The analyzer's parts: series input, robust statistics, context, findings, registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from services.analyzer import (
    ANALYZER_VERSION,
    KINDS,
    RULES,
    Curves,
    Diagnosis,
    Finding,
    RunContext,
    diagnose,
    stats,
)
from services.analyzer.curve_series import to_track
from services.analyzer.profile import lr_raised, make_bins, settled_head
from services.analyzer.recommend import lr_changes, nice, sig, warmup_steps_for
from services.analyzer.stats import (
    diff_sigma,
    group_medians,
    isotonic_decreasing,
    running_median,
)
from services.domain.records import Series
from services.specs import TrialSpec


# -- profile: the start and the lr a schedule raised ------------------------------------
def test_settled_start_grows_the_head_while_the_loss_has_not_moved() -> None:
    rng = np.random.default_rng(0)
    # 600 batches of a heavy-tailed loss: flat at 4 for 40 steps, then falling to 2.
    level = np.where(np.arange(600) < 40, 4.0, 2.0 + 2.0 * np.exp(-(np.arange(600) - 40) / 60))
    noisy = level * rng.lognormal(0.0, 0.5, 600)
    start, se = settled_head(noisy)
    # Six batches (the first 1%) would leave the start ~20% off; the settled head is
    # longer, stops before the fall, and its error is a few percent of the level.
    assert se < 0.1 * start
    assert abs(start - float(np.median(noisy[:40]))) < 3 * se
    # A quiet curve that falls at once keeps the first 1% as its start.
    quiet = 4.0 * np.exp(-np.arange(600) / 50.0) + 1e-3 * rng.standard_normal(600)
    start_q, _ = settled_head(quiet)
    assert start_q == pytest.approx(float(np.median(quiet[:6])))


def test_lr_raised_covers_a_one_cycle_anneal_but_not_a_warmup() -> None:
    steps = np.arange(1000)
    bins = make_bins(steps, np.zeros(1000))
    up = np.minimum(1.0, steps / 300)
    one_cycle = to_track(
        (
            steps,
            0.004 + 0.096 * np.where(steps < 300, up, np.cos((steps - 300) / 700 * np.pi / 2) ** 2),
        )
    )
    ctx = RunContext(lr=0.004, schedule="one_cycle", max_lr=0.1)
    raised = lr_raised(one_cycle, bins, ctx)
    assert raised[:95].all() and not raised[-1]  # up, at the peak and most of the way down
    warm = to_track((steps, 0.1 * up))
    assert not lr_raised(warm, bins, RunContext(lr=0.1, warmup_steps=300))[40:].any()
    flat = to_track((steps, np.full(1000, 0.1)))
    assert not lr_raised(flat, bins, RunContext(lr=0.1)).any()


# -- series input --------------------------------------------------------------------
def test_tracks_accept_domain_series_and_tuples() -> None:
    domain = Series("train_loss", [0, 1, 2], [3.0, 2.0, 1.0], [0.0] * 3, total=3)
    for series in (domain, ([0, 1, 2], [3.0, 2.0, 1.0])):
        track = to_track(series)
        assert track.steps.tolist() == [0, 1, 2]
        assert track.values.tolist() == [3.0, 2.0, 1.0]


def test_tracks_sort_by_step_and_keep_the_last_value_of_a_repeated_step() -> None:
    track = to_track(([3, 1, 2, 1, 0], [0.5, 1.0, 0.8, 0.9, 2.0]))
    assert track.steps.tolist() == [0, 1, 2, 3]
    assert track.values.tolist() == [2.0, 0.9, 0.8, 0.5]


def test_tracks_keep_non_finite_values() -> None:
    track = to_track(([0, 1, 2], [1.0, math.inf, math.nan]))
    assert track.first_nonfinite() == 1
    assert math.isnan(track.values[2])


def test_mismatched_series_is_rejected() -> None:
    with pytest.raises(ValueError, match="2 steps but 3 values"):
        to_track(([0, 1], [1.0, 2.0, 3.0]))


# -- statistics ----------------------------------------------------------------------
@pytest.mark.parametrize(("n", "groups"), [(1, 1), (7, 3), (100, 10), (1001, 100)])
def test_group_medians_match_numpy(n: int, groups: int) -> None:
    values = np.random.default_rng(n).normal(size=n)
    ids = (np.arange(n) * groups) // n
    expected = [np.median(values[ids == g]) for g in range(groups)]
    assert np.allclose(group_medians(values, ids, groups), expected)


def test_group_medians_mark_empty_groups() -> None:
    out = group_medians(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 2]), 4)
    assert out[0] == 1.5 and out[2] == 3.0
    assert math.isnan(out[1]) and math.isnan(out[3])


def test_diff_sigma_measures_noise_not_trend() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    trend = np.linspace(10.0, 0.0, n)
    sigma = diff_sigma(trend + rng.normal(0.0, 0.5, n), np.zeros(n, dtype=np.int64), 1)
    assert sigma[0] == pytest.approx(0.5, rel=0.05)


def test_isotonic_fit_is_non_increasing_and_pools_violators() -> None:
    fit = isotonic_decreasing(np.array([5.0, 3.0, 4.0, 1.0]), np.ones(4))
    assert fit.tolist() == [5.0, 3.5, 3.5, 1.0]
    y = np.random.default_rng(1).normal(size=200)
    fit = isotonic_decreasing(y, np.ones(200))
    assert np.all(np.diff(fit) <= 1e-12)
    assert fit.mean() == pytest.approx(y.mean())


def test_running_median_removes_a_spike_and_keeps_the_ends() -> None:
    y = np.array([1.0, 1.0, 9.0, 1.0, 1.0, 2.0])
    out = running_median(y, 3)
    assert out.shape == y.shape
    assert out[2] == 1.0 and out[0] == 1.0


# -- context -------------------------------------------------------------------------
def test_context_from_a_minimal_spec_takes_the_spec_defaults() -> None:
    ctx = RunContext.from_spec({"task": {"name": "digits"}})
    assert ctx.lr == 0.01 and ctx.optimizer == "sgd" and ctx.schedule == "constant"
    assert ctx.batch_size == 32 and ctx.total_steps is None and not ctx.running
    assert ctx.hidden == (128,)


def test_context_from_a_full_spec() -> None:
    spec = {
        "task": "digits",
        "optimizer": {"name": "adamw", "lr": 0.003},
        "schedule": {"name": "cyclic", "max_lr": 0.1, "warmup_steps": 100},
        "budget": {"max_steps": 5000},
        "batch_size": "full",
        "regularization": {
            "swa": {"start_step": 4000, "swa_lr": 0.01},
            "grad_clip_norm": 1.0,
            "dropout": 0.1,
        },
    }
    ctx = RunContext.from_spec(spec, running=True)
    assert (ctx.lr, ctx.optimizer, ctx.schedule, ctx.max_lr) == (0.003, "adamw", "cyclic", 0.1)
    assert ctx.warmup_steps == 100 and ctx.swa_start_step == 4000 and ctx.total_steps == 5000
    assert ctx.batch_size is None and ctx.running and ctx.cyclical
    assert ctx.weight_decay_path == "optimizer.weight_decay" and ctx.grad_clip_norm == 1.0
    assert ctx.margin > 1.0


def test_context_converts_epochs_with_steps_per_epoch() -> None:
    spec = TrialSpec.model_validate(
        {
            "task": "digits",
            "budget": {"epochs": 5},
            "regularization": {"swa": {"start_epoch": 3, "swa_lr": 0.01}},
        }
    )
    ctx = RunContext.from_spec(spec, steps_per_epoch=45)
    assert ctx.total_steps == 225 and ctx.swa_start_step == 135
    assert RunContext.from_spec(spec).total_steps is None


# -- recommendations -----------------------------------------------------------------
def test_lr_changes_land_on_readable_values_on_the_right_side() -> None:
    assert lr_changes(RunContext(lr=1.0), 1 / 3, None) == {"optimizer.lr": 0.3}
    assert lr_changes(RunContext(lr=0.05), 0.5, None) == {"optimizer.lr": 0.02}
    assert lr_changes(RunContext(lr=1e-3), 3.0, None) == {"optimizer.lr": 3e-3}
    assert lr_changes(RunContext(), 0.1, 0.5) == {"optimizer.lr": 0.05}
    assert lr_changes(RunContext(), 0.1, None) == {}


def test_lr_changes_follow_the_schedule_peak() -> None:
    one_cycle = RunContext(lr=0.004, schedule="one_cycle", max_lr=0.1)
    assert lr_changes(one_cycle, 0.5, None) == {"schedule.max_lr": 0.05}
    cyclic = RunContext(lr=0.01, schedule="cyclic", max_lr=0.1)
    assert lr_changes(cyclic, 0.5, None) == {"schedule.max_lr": 0.05, "optimizer.lr": 5e-3}


def test_number_helpers() -> None:
    assert nice(0.37) == 0.3 and nice(0.45) == 0.5
    assert nice(1.0, below=1.0) == 0.5
    assert nice(1.0, above=1.0) == 2.0
    assert sig(2.7183) == 2.7
    assert warmup_steps_for(90, RunContext(total_steps=3000), 3000) == 180
    assert warmup_steps_for(2000, RunContext(total_steps=3000), 3000) is None


# -- findings, registry, edge inputs -------------------------------------------------
def test_registry_covers_every_kind_but_healthy() -> None:
    assert set(RULES) | {"healthy", "insufficient_data"} == set(KINDS)
    assert len(KINDS) == 10


def test_rules_can_be_called_one_by_one() -> None:
    steps = np.arange(500)
    series = {"train_loss": (steps, 2.0 * np.exp(-steps / 100) + 0.1)}
    ctx = RunContext()
    curves = Curves(series, ctx)
    for rule in RULES.values():
        assert rule(curves, ctx) is None


def test_finding_rejects_unknown_kinds_and_bad_confidence() -> None:
    common = {"severity": "info", "step": None, "summary": "", "evidence": {}}
    with pytest.raises(ValueError, match="unknown finding kind"):
        Finding(kind="weird", confidence=0.5, recommendation="", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        Finding(kind="healthy", confidence=1.5, recommendation="", **common)  # type: ignore[arg-type]


def test_to_dict_is_strict_json() -> None:
    finding = Finding(
        kind="divergence",
        severity="critical",
        confidence=0.99,
        step=10,
        summary="train_loss became inf",
        evidence={"nonfinite_value": math.inf, "other": math.nan, "widths": (1, 2)},
        recommendation="lower the lr",
        changes={"optimizer.lr": 0.1},
    )
    out = Diagnosis((finding,)).to_dict()
    text = json.dumps(out, allow_nan=False)
    assert '"Infinity"' in text and '"NaN"' in text and out["kinds"] == ["divergence"]
    assert out["findings"][0]["evidence"]["widths"] == [1, 2]


@pytest.mark.parametrize(
    "series",
    [
        {},
        {"train_loss": ([], [])},
        {"train_loss": ([0], [2.3])},
        {"train_loss": ([0, 1, 2], [2.3, 2.2, 2.1])},
        {"lr": ([0, 1], [0.1, 0.1])},
        {"train_loss": (list(range(500)), [1.0] * 500)},
        {"train_loss": (list(range(1000)), list(-np.linspace(0.0, 5.0, 1000)))},
        {"val_loss": (list(range(0, 1000, 50)), list(np.exp(-np.arange(20) / 5)))},
        {"train_loss": (list(range(1000, 100_000, 100)), list(np.linspace(2, 0.1, 990)))},
    ],
)
@pytest.mark.parametrize("running", [False, True])
def test_odd_inputs_give_a_diagnosis(series: dict[str, tuple[list, list]], running: bool) -> None:
    diagnosis = diagnose(series, RunContext(running=running))
    assert diagnosis.findings
    assert diagnosis.provisional is running
    json.dumps(diagnosis.to_dict(), allow_nan=False)


def test_non_finite_first_points_are_divergence() -> None:
    for series in (
        {"train_loss": ([0, 1], [math.nan, 1.0])},
        {"train_loss": ([0, 1, 2], [2.3, 5.0, math.inf])},
        {"val_loss": (list(range(0, 1000, 50)), [1.0] * 10 + [math.inf] * 10)},
    ):
        finding = diagnose(series).get("divergence")
        assert finding is not None and finding.severity == "critical"


def test_findings_come_most_severe_first() -> None:
    steps = np.arange(3000)
    loss = (0.3 + 2.0 * np.exp(-steps / 300)) * np.exp(np.clip(steps - 1500, 0, None) / 200)
    grad = np.exp(np.random.default_rng(0).normal(0.0, 0.2, 3000))
    grad[2000:] *= 50
    diagnosis = diagnose({"train_loss": (steps, loss), "grad_norm": (steps, grad)})
    ranks = [("info", "warning", "critical").index(f.severity) for f in diagnosis.findings]
    assert ranks == sorted(ranks, reverse=True)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10, 101, 1000])
def test_median_is_numpys_median_without_its_cost(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(100):
        x = rng.normal(size=n)
        for special in (np.nan, np.inf, -np.inf):
            if rng.random() < 0.2:
                x[rng.integers(n)] = special
        with np.errstate(invalid="ignore"):
            want, got = np.median(x), stats.median(x)
        assert (np.isnan(want) and np.isnan(got)) or want == got, (x, want, got)
    assert np.isnan(stats.median(np.array([])))
    assert stats.median([3, 1, 2]) == 2.0 and stats.median([[1, 2], [3, 4]]) == 2.5


def test_a_diagnosis_names_the_analyzer_version_that_made_it() -> None:
    assert len(ANALYZER_VERSION) == 12 and int(ANALYZER_VERSION, 16) >= 0
    assert Diagnosis(()).to_dict()["analyzer_version"] == ANALYZER_VERSION
