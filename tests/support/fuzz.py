"""Hypothesis settings and arbitrary JSON for the tests that throw junk at the API, and
the check every answer to it must pass."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import services.specs as specs

FUZZ = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPEC_MODELS = [
    specs.TrialSpec, specs.SweepSpec, specs.Regularization, specs.Budget, specs.Resources,
    specs.LrScaling, specs.SWA, specs.Metric, specs.DistributionParam,
    *specs.OPTIMIZERS.values(), *specs.SCHEDULES.values(), *specs.TASKS.values(),
]  # fmt: skip
REAL_KEYS = sorted({key for model in SPEC_MODELS for key in model.model_fields} | {"points"})
REGISTRY_NAMES = sorted({*specs.OPTIMIZERS, *specs.SCHEDULES, *specs.TASKS})
EDGE_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 2**70, -(2**70)]
EDGE_TEXT = ["", "\x00", "a\x00b", "NaN", "Infinity", "-Infinity", "full", " ", "\u2028", "é"]

ints = st.integers() | st.sampled_from(EDGE_INTS)
floats = st.floats(allow_nan=True, allow_infinity=True)
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    EDGE_TEXT + REGISTRY_NAMES + ["grid", "random", "bayes", "single", "minimize"]
)
scalars = st.none() | st.booleans() | ints | floats | text
keys = st.sampled_from(REAL_KEYS) | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)


def assert_handled(response: Any) -> None:
    """Below 500; a client error carries the detail list of the error format."""
    request = response.request
    where = f"{request.method} {request.url} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert isinstance(detail, list) and detail, where
        for item in detail:
            assert isinstance(item["field"], str) and item["message"] and item["type"], where
