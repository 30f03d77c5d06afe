"""The kind classifier's parts: features that do not depend on the loss scale, trees that
evaluate as the library fitted them, and the definitions diagnose() applies first."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.families.model import export
from services.analyzer import RunContext, diagnose
from services.analyzer.classifier import MODEL_PATH, KindModel, default_model
from services.analyzer.curves import Curves
from services.analyzer.definitions import admissible
from services.analyzer.features import FEATURES, MISSING, curve_features

STEPS = np.arange(600)
RNG = np.random.default_rng(7)


def _falling(scale: float = 1.0, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    loss = scale * (0.1 + 2.2 * np.exp(-STEPS / 120)) * np.exp(rng.normal(0, 0.05, STEPS.size))
    val_steps = STEPS[::30]
    return {
        "train_loss": (STEPS, loss),
        "val_loss": (val_steps, scale * (0.15 + 2.2 * np.exp(-val_steps / 120))),
        "lr": (STEPS, np.full(STEPS.size, 0.05)),
        "grad_norm": (STEPS, 1.0 + 0.1 * rng.random(STEPS.size)),
    }


def _features(series: dict, ctx: RunContext | None = None) -> dict[str, float]:
    ctx = ctx or RunContext()
    return dict(zip(FEATURES, curve_features(Curves(series, ctx).tracks, ctx), strict=True))


def test_shape_features_do_not_depend_on_the_loss_scale() -> None:
    a, b = _features(_falling(1.0)), _features(_falling(1e-3))
    levels = {"end_level_log10", "start_level_log10"}
    for name in FEATURES:
        if name in levels:
            assert b[name] == pytest.approx(a[name] - 3, abs=0.05), name
        else:
            assert b[name] == pytest.approx(a[name], rel=1e-6, abs=1e-6), name


def test_a_series_not_logged_is_missing_and_flagged() -> None:
    series = {"train_loss": _falling()["train_loss"]}
    f = _features(series)
    assert f["has_grad"] == 0.0 and f["has_val"] == 0.0 and f["has_lr"] == 0.0
    assert f["grad_late_vs_early"] == MISSING and f["val_end_vs_min"] == MISSING
    with_lr = _features(series, RunContext(lr=0.1))
    assert with_lr["has_lr"] == 0.5 and with_lr["lr_log10"] == pytest.approx(-1.0)


def test_exported_trees_give_the_fitted_probabilities() -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    x = RNG.normal(size=(300, len(FEATURES)))
    y = np.where(
        x[:, 0] + 0.5 * x[:, 3] > 0.3, "divergence", np.where(x[:, 5] > 0, "healthy", "oscillation")
    )
    clf = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, y)
    model = export(clf, x[:1])
    probe = RNG.normal(size=(50, len(FEATURES)))
    want = clf.predict_proba(probe)
    got = np.array([[model.probabilities(row)[c] for c in clf.classes_] for row in probe])
    assert np.allclose(want, got, atol=1e-9)
    again = KindModel.from_json(model.to_json())
    rounded = np.array([[again.probabilities(row)[c] for c in clf.classes_] for row in probe])
    assert np.allclose(want, rounded, atol=1e-4)  # stored to 6 decimals


def test_the_shipped_model_reads_the_current_features() -> None:
    model = default_model()
    assert model.features == FEATURES
    assert set(model.classes) <= {
        "divergence", "oscillation", "slow_convergence", "overfitting", "underfitting",
        "exploding_gradients", "vanishing_gradients", "healthy",
    }  # fmt: skip
    assert MODEL_PATH.stat().st_size < 3_000_000


@pytest.mark.parametrize(
    ("series", "logged"),
    [
        ({}, "no metrics were logged"),
        ({"val_loss": ([0, 10], [1.0, 0.9])}, "logged: val_loss"),
        (
            {"train_loss": (list(range(5)), [2.3, 2.2, 2.1, 2.0, 1.9])},
            "Only 5 training-loss points",
        ),
    ],
)
def test_nothing_to_judge_is_insufficient_data_never_healthy(series: dict, logged: str) -> None:
    d = diagnose(series, RunContext())
    assert d.kinds == ("insufficient_data",)
    assert logged in d.findings[0].summary


def test_a_non_finite_loss_is_divergence_even_after_three_steps() -> None:
    d = diagnose({"train_loss": ([0, 1, 2], [2.3, 40.0, math.inf])}, RunContext(lr=3.0))
    assert d.kinds == ("divergence",)


def test_a_loss_that_ended_far_above_its_start_is_never_vanishing() -> None:
    # However small its gradient was on the way (a linear model at its exact fit before a
    # warmup blew it up): vanishing is a loss that does not move from its start.
    still = {"has_grad": 1.0, "end_vs_start": 0.0, "min_vs_start": 0.0, "end_vs_min": 0.0}
    assert admissible("vanishing_gradients", still)
    assert not admissible("vanishing_gradients", {**still, "end_vs_start": math.log(27.0)})
    assert not admissible("vanishing_gradients", {**still, "has_grad": 0.0})


@pytest.mark.parametrize(
    ("low", "end", "climbed_back"),
    [
        (0.3, 0.8, True),  # fell to 0.3 of its start, ended at 0.8: gave back most of it
        (0.3, 0.4, False),  # ended a third above its best: noise at a floor, not a climb
        (0.8, 0.9, False),  # fell a fifth only: too little to have lost anything
        (0.01, 0.05, False),  # 5x its best, but only 4% of the fall given back
        (0.3, 1.5, False),  # ended far above its start: that is a divergence
    ],
)
def test_a_loss_that_climbed_back_is_not_healthy_slow_underfitting_or_vanishing(
    low: float, end: float, climbed_back: bool
) -> None:
    f = {
        "has_grad": 1.0,
        "drop_share": 1.0 - end,
        "min_vs_start": math.log(low),
        "end_vs_start": math.log(end),
        "end_vs_min": math.log(end / low),
    }
    for kind in ("healthy", "slow_convergence"):
        assert admissible(kind, f) is not climbed_back
    assert admissible("underfitting", f) is (not climbed_back and end < 0.97)
    # ... and a loss that fell below half its start moved: never vanishing
    assert admissible("vanishing_gradients", f) is (not climbed_back and low >= 0.5)
    assert admissible("oscillation", f)


def test_every_diagnosis_has_one_finding() -> None:
    for scale in (1.0, 1e-4):
        d = diagnose(_falling(scale), RunContext(lr=0.05, optimizer="sgd"))
        assert len(d.findings) == 1
