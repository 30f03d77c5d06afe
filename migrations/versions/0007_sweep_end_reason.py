"""Sweeps: why a sweep ended by itself, when it did not simply run out of trials (a
metric target reached).

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-10 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every sweep ended so far ended by running out of trials or by a cancel: no reason.
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_column("end_reason")
