"""Sweeps and trials: status_reason, why a sweep stopped itself (its trials kept failing)
or why a queued trial waits (no node has the resources it asks for).

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-11 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("sweeps", "trials")


def upgrade() -> None:
    # Nothing stored before had a reason to give: null for every row.
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # The code before knows no sweep status `failed`: such a sweep reads as cancelled there.
    op.execute("UPDATE sweeps SET status = 'cancelled' WHERE status = 'failed'")
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("status_reason")
