"""The store's decoder of PostgreSQL's packed series columns (big-endian int8 / float8)."""

from __future__ import annotations

import math

import numpy as np

from services.store.metrics_repo import packed_columns


def _pack(steps: list[int], values: list[float]) -> tuple[bytes, bytes]:
    return np.asarray(steps, ">i8").tobytes(), np.asarray(values, ">f8").tobytes()


def test_ordered_columns_come_back_as_native_arrays() -> None:
    steps, values = packed_columns(*_pack([0, 1, 5], [0.5, math.nan, -math.inf]))
    assert steps.dtype == np.int64 and values.dtype == np.float64
    assert steps.dtype.byteorder in ("=", "<") and values.dtype.byteorder in ("=", "<")
    assert steps.tolist() == [0, 1, 5]
    assert values[0] == 0.5 and math.isnan(values[1]) and values[2] == -math.inf


def test_out_of_order_columns_are_sorted_by_step_with_their_values() -> None:
    # A bitmap scan returns points in the order they sit in the table, not by step.
    steps, values = packed_columns(*_pack([3, 0, 2, 1], [30.0, 0.0, 20.0, 10.0]))
    assert steps.tolist() == [0, 1, 2, 3]
    assert values.tolist() == [0.0, 10.0, 20.0, 30.0]


def test_empty_and_single_point_columns() -> None:
    steps, values = packed_columns(b"", b"")
    assert steps.size == 0 and values.size == 0
    steps, values = packed_columns(*_pack([7], [1.5]))
    assert (steps.tolist(), values.tolist()) == ([7], [1.5])
