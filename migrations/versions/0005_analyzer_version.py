"""Trials: the analyzer version that made the cached analysis, as a column.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Caches written before this have no version: they read as stale, and the live
    # analyzer makes them again with the rules that run.
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("analyzer_version", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_column("analyzer_version")
