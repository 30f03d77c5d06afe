"""Markers that follow from a fixture (pyproject.toml lists every marker): a test that uses
one of these fixtures, directly or through another, needs what the fixture starts.
tests/conftest.py applies them at collection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "ray_local": ("ray",),
    "ray_cluster": ("ray", "subprocess"),  # `ray start` nodes and a driver process
    "pg_server": ("postgres",),
    "lrlab_server": ("subprocess",),  # `lrlab serve`
}


def markers_for(fixtures: Iterable[str], params: Mapping[str, Any]) -> set[str]:
    """The markers of a test that uses `fixtures` with these fixture `params`."""
    used = set(fixtures)
    if params.get("store") == "postgres":
        used.add("pg_server")  # `store` asks for its database only on this backend
    return {marker for name in used for marker in FIXTURE_MARKERS.get(name, ())}
