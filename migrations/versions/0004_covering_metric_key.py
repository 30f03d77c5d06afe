"""Metric points: the primary key carries the value (PostgreSQL), so that reading a
series is an index-only scan in step order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = "PRIMARY KEY (trial_id, name, step)"


def _rebuild_key(definition: str) -> None:
    # SQLite has no INCLUDE; its key (and the rows, stored in rowid order) stay as they are.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE metric_points DROP CONSTRAINT pk_metric_points, "
            f"ADD CONSTRAINT pk_metric_points {definition}"
        )


def upgrade() -> None:
    _rebuild_key(f"{_KEY} INCLUDE (value)")


def downgrade() -> None:
    _rebuild_key(_KEY)
