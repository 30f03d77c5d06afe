"""downsample_indices: bounded, ordered, and never hides a spike, a dip or a divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.domain.downsample import downsample_indices

PRIMES = [2, 3, 5, 7, 97, 101, 997, 1009, 7919, 10007]
MAX_POINTS = [4, 5, 7, 10, 64, 100, 333, 1000]


def _sizes_for(max_points: int) -> list[int]:
    edges = [0, 1, 2, max_points - 1, max_points, max_points + 1, max_points + 2]
    multiples = [2 * max_points, 2 * max_points + 1, 10 * max_points - 1, 50_000]
    return sorted({n for n in edges + multiples + PRIMES if n >= 0})


def _noisy(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.linspace(5.0, 1.0, n) + rng.normal(0.0, 0.01, n)


def _assert_well_formed(keep: np.ndarray, n: int, max_points: int) -> None:
    assert keep.dtype == np.int64
    assert keep.size <= max_points
    assert np.all(np.diff(keep) > 0), "indices must be strictly ascending (sorted, unique)"
    if n:
        assert keep[0] == 0
        assert keep[-1] == n - 1
        assert keep.max() < n


# -- shape of the result ------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 4, 99, 100])
def test_short_series_is_returned_whole(n: int) -> None:
    keep = downsample_indices(_noisy(n), 100)
    assert keep.tolist() == list(range(n))


@pytest.mark.parametrize("max_points", MAX_POINTS)
def test_sorted_unique_bounded_and_keeps_ends_over_a_grid(max_points: int) -> None:
    for n in _sizes_for(max_points):
        keep = downsample_indices(_noisy(n, seed=n), max_points)
        _assert_well_formed(keep, n, max_points)
        if n <= max_points:
            assert keep.tolist() == list(range(n))


def test_one_over_the_budget_is_downsampled_to_the_budget() -> None:
    keep = downsample_indices(_noisy(1001), 1000)
    _assert_well_formed(keep, 1001, 1000)
    assert keep.size < 1001


def test_uses_most_of_the_budget_on_a_long_series() -> None:
    # Not a hard contract, but a chart of 10 points out of a 1000 budget would be useless.
    keep = downsample_indices(_noisy(100_000), 1000)
    assert 900 <= keep.size <= 1000


@pytest.mark.parametrize("max_points", [0, 1, 2, 3, -1])
def test_max_points_below_four_is_rejected(max_points: int) -> None:
    with pytest.raises(ValueError, match="max_points"):
        downsample_indices(_noisy(10), max_points)


# -- what must survive ------------------------------------------------------------------
@pytest.mark.parametrize("n", [1_000, 10_007, 100_000])
@pytest.mark.parametrize("where", [0.013, 0.5, 0.977])
def test_keeps_a_lone_spike_and_a_lone_dip(n: int, where: float) -> None:
    values = _noisy(n)
    spike, dip = int(n * where), int(n * (1 - where))
    values[spike] = 1e6
    values[dip] = -1e6
    keep = set(downsample_indices(values, 50).tolist())
    assert spike in keep
    assert dip in keep


def test_keeps_the_onset_of_every_nonfinite_run_when_there_are_few() -> None:
    values = _noisy(50_000)
    runs = {1_234: math.nan, 20_000: math.inf, 33_333: -math.inf, 49_000: math.nan}
    for onset, bad in runs.items():
        values[onset : onset + 37] = bad
    keep = downsample_indices(values, 200)
    _assert_well_formed(keep, values.size, 200)
    assert set(runs) <= set(keep.tolist())


def test_nan_tail_onset_is_kept() -> None:
    # The classic divergence: fine for a while, NaN until the end.
    values = _noisy(20_000)
    values[12_345:] = math.nan
    keep = downsample_indices(values, 100)
    _assert_well_formed(keep, values.size, 100)
    assert 12_345 in keep.tolist()
    assert np.isfinite(values[keep]).sum() > 10, "the healthy part must still be drawn"


def test_thousands_of_nan_runs_stay_within_budget() -> None:
    values = _noisy(100_000)
    values[::7] = math.nan  # ~14k separate runs
    for max_points in (4, 5, 50, 1000):
        keep = downsample_indices(values, max_points)
        _assert_well_formed(keep, values.size, max_points)
        assert np.isnan(values[keep]).any(), "a flapping series must still show NaNs"


def test_all_nan_series() -> None:
    values = np.full(10_000, math.nan)
    keep = downsample_indices(values, 100)
    _assert_well_formed(keep, values.size, 100)
    assert np.isnan(values[keep]).all()


def test_all_inf_series() -> None:
    values = np.full(5_000, math.inf)
    keep = downsample_indices(values, 10)
    _assert_well_formed(keep, values.size, 10)


def test_constant_series() -> None:
    keep = downsample_indices(np.ones(10_000), 100)
    _assert_well_formed(keep, 10_000, 100)


def test_does_not_modify_its_input() -> None:
    values = _noisy(5_000)
    values[100:200] = math.nan
    before = values.copy()
    downsample_indices(values, 64)
    np.testing.assert_array_equal(values, before)
