"""Alembic: one head, a clean upgrade/downgrade/upgrade round trip, no drift from the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from services.store.migrate import downgrade_to_base, heads, upgrade_to_head
from services.store.tables import Base

MODEL_TABLES = set(Base.metadata.tables)


# -- helpers ------------------------------------------------------------------------------
def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _schema_drift(url: str) -> list[object]:
    """What autogenerate would put in a new migration (empty when models match)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # The same comparison options as migrations/env.py, so this sees what a
            # developer running `alembic revision --autogenerate` would see. Nothing ignored.
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def _assert_round_trip(url: str) -> None:
    (head,) = heads()
    assert _tables(url) == set()

    upgrade_to_head(url)
    assert _tables(url) >= MODEL_TABLES
    assert _current_revision(url) == head

    downgrade_to_base(url)
    assert _tables(url) & MODEL_TABLES == set()
    assert _tables(url) <= {"alembic_version"}
    assert _current_revision(url) is None

    upgrade_to_head(url)
    assert _tables(url) >= MODEL_TABLES
    assert _current_revision(url) == head


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.db'}"


# -- tests --------------------------------------------------------------------------------
def test_single_head() -> None:
    assert len(heads()) == 1


def test_models_declare_the_tables_the_store_needs() -> None:
    # Guards the round-trip tests below against passing vacuously on an empty metadata.
    assert {"projects", "api_tokens", "sweeps", "trials", "metric_points"} <= MODEL_TABLES


def test_postgres_round_trip(fresh_pg_url: str) -> None:
    _assert_round_trip(fresh_pg_url)


def test_postgres_upgrade_is_idempotent(fresh_pg_url: str) -> None:
    upgrade_to_head(fresh_pg_url)
    upgrade_to_head(fresh_pg_url)
    assert _current_revision(fresh_pg_url) == heads()[0]


def test_postgres_schema_matches_models(fresh_pg_url: str) -> None:
    upgrade_to_head(fresh_pg_url)
    assert _schema_drift(fresh_pg_url) == []


def test_sqlite_round_trip(sqlite_url: str) -> None:
    _assert_round_trip(sqlite_url)


def test_sqlite_schema_matches_models(sqlite_url: str) -> None:
    upgrade_to_head(sqlite_url)
    assert _schema_drift(sqlite_url) == []
