"""Reading a range test's curve: suggestions on synthetic curves with a known shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.analyzer.lr_find import SmoothedLoss, blowup_index, smooth, suggest_lrs
from services.analyzer.sweep_lr import lr_text


def ramp(lo: float = 1e-6, hi: float = 10.0, n: int = 100) -> np.ndarray:
    return np.geomspace(lo, hi, n)


def curve(lrs: np.ndarray, drop_at: float = 1e-2, blow_at: float = 1.0) -> np.ndarray:
    """2.3 at small lrs, falling to 0.3 around `drop_at` (over about a decade each side),
    then rising steeply from `blow_at` on."""
    x = np.log10(lrs)
    fall = 2.0 / (1 + np.exp(-3 * (x - math.log10(drop_at))))
    rise = np.exp(4 * (x - math.log10(blow_at)))
    return 2.3 - fall + rise


def within(lr: float, target: float, factor: float) -> bool:
    return target / factor <= lr <= target * factor


def test_the_smoothed_loss_is_bias_corrected_from_the_first_point() -> None:
    # Without the correction an EMA starts near 0 and climbs; with it, a constant stays put.
    assert smooth([2.0, 2.0, 2.0], 0.98) == pytest.approx([2.0, 2.0, 2.0])
    ema = SmoothedLoss(0.5)
    ema.add(4.0)
    assert ema.add(2.0) == pytest.approx((0.25 * 4 + 0.5 * 2) / 0.75)
    assert ema.best == pytest.approx(2.0 + 2 / 3)


def test_blowup_is_four_times_the_best_so_far_or_not_finite() -> None:
    assert blowup_index([3.0, 1.0, 3.9, 4.1], 4.0) == 3
    assert blowup_index([3.0, 2.0, math.nan], 4.0) == 2
    assert blowup_index([3.0, 1.0, 3.9], 4.0) is None
    # A negative best says nothing about a ratio: only a non-finite value ends it.
    assert blowup_index([-1.0, -2.0, 50.0], 4.0) is None


def test_a_clean_curve_gives_all_three_suggestions_around_the_descent() -> None:
    lrs = ramp()
    result = suggest_lrs(lrs.tolist(), curve(lrs).tolist(), smoothing=0.0)
    assert result.verdict == "ok"
    steepest, minimum, valley = (result.get(m) for m in ("steepest", "minimum", "valley"))
    assert steepest is not None and minimum is not None and valley is not None
    # The logistic falls fastest at its midpoint, 1e-2.
    assert within(steepest.lr, 1e-2, 1.5)
    # The sum's minimum is between the fall and the rise; a tenth of it is below.
    lr_min = lrs[result.min_index or 0]
    assert 1e-1 < lr_min < 1.0 and minimum.lr == pytest.approx(lr_min / 10)
    # The descending stretch spans the fall, so its middle is near the steepest point.
    assert within(valley.lr, 1e-2, 3)
    assert result.recommended == valley
    assert result.bounds is not None
    assert result.bounds.low < min(s.lr for s in result.suggestions)
    assert result.bounds.high == pytest.approx(lr_min / 3)
    for s in result.suggestions:
        assert s.reasoning and any(ch.isdigit() for ch in s.reasoning)
    assert result.summary.startswith(f"recommended lr {lr_text(valley.lr)} (valley)")


def test_the_curve_is_cut_where_the_loss_blows_up() -> None:
    lrs = ramp()
    losses = curve(lrs)
    result = suggest_lrs(lrs.tolist(), losses.tolist(), smoothing=0.0)
    assert result.blowup_index is not None
    assert losses[result.blowup_index] > 4 * losses[: result.blowup_index].min()
    assert any("blew up at lr" in n for n in result.notes)


def test_noise_moves_the_suggestions_little() -> None:
    lrs = ramp()
    clean = suggest_lrs(lrs.tolist(), curve(lrs).tolist(), smoothing=0.0)
    for seed in range(5):
        noisy = curve(lrs) + np.random.default_rng(seed).normal(0, 0.08, lrs.size)
        result = suggest_lrs(lrs.tolist(), noisy.tolist(), smoothing=0.9)
        assert result.verdict == "ok"
        assert result.recommended is not None and clean.recommended is not None
        # The EMA lags by ~10 points (~0.8 decades here): suggestions stay within 10x.
        assert within(result.recommended.lr, clean.recommended.lr, 10)
        steepest = result.get("steepest")
        assert steepest is not None and within(steepest.lr, 1e-2, 10)


def test_a_curve_that_never_blows_up_says_max_lr_is_too_low() -> None:
    lrs = ramp(1e-6, 1e-2)  # stops at the middle of the fall
    result = suggest_lrs(lrs.tolist(), curve(lrs).tolist(), smoothing=0.0)
    assert result.verdict == "never_blew_up"
    assert result.blowup_index is None
    assert "raise max_lr" in result.summary
    assert result.bounds is not None and result.bounds.high == pytest.approx(lrs[-1])
    # Still suggestions, but read as lower bounds.
    assert result.recommended is not None and "lower bounds" in result.summary


def test_a_test_still_running_is_not_told_its_max_lr_is_too_low() -> None:
    lrs = ramp(1e-6, 1e-2)
    result = suggest_lrs(lrs.tolist(), curve(lrs).tolist(), smoothing=0.0, finished=False)
    assert result.verdict == "ok" and "raise max_lr" not in result.summary


def test_a_curve_that_blows_up_at_once_says_min_lr_is_too_high() -> None:
    lrs = ramp(0.5, 100.0, 60)
    result = suggest_lrs(lrs.tolist(), curve(lrs).tolist(), smoothing=0.0)
    assert result.verdict == "blew_up_at_once"
    assert "min_lr" in result.summary and "too large" in result.summary
    assert result.suggestions == () and result.recommended is None and result.bounds is None


def test_a_loss_that_turns_nan_at_once_is_a_blow_up_at_once() -> None:
    lrs = ramp(1.0, 100.0, 30)
    losses = [2.3, 50.0] + [math.nan] * 28
    result = suggest_lrs(lrs.tolist(), losses, smoothing=0.9)
    assert result.verdict == "blew_up_at_once"


def test_a_flat_curve_has_no_descent() -> None:
    lrs = ramp(1e-9, 1e-7, 50)
    result = suggest_lrs(lrs.tolist(), [2.3] * 50, smoothing=0.9)
    assert result.verdict == "no_descent" and result.recommended is None
    assert "raise max_lr" in result.summary


def test_too_few_points_give_no_number() -> None:
    result = suggest_lrs([1e-5, 1e-4, 1e-3], [2.3, 2.2, 2.0])
    assert result.verdict == "too_few_points" and result.recommended is None
    assert "at least" in result.summary


def test_input_errors_are_named() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        suggest_lrs([1e-3, 1e-2], [1.0])
    with pytest.raises(ValueError, match="must increase"):
        suggest_lrs([1e-2, 1e-3] * 5, [1.0] * 10)
