"""Live analysis and external runs: trial kind, policy stops, findings kept current,
the webhook outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="trained")
        )
        batch_op.add_column(sa.Column("stop_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("analyzed_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("analysis", sa.JSON(), nullable=True))

    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "updated_at", WHEN, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
            )
        )
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_unique_constraint("uq_findings_trial_id", ["trial_id", "kind"])
        batch_op.create_index("ix_findings_sweep_updated", ["sweep_id", "updated_at"])

    op.create_table(
        "notifications",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column(
            "project_id",
            ID,
            sa.ForeignKey(
                "projects.id",
                ondelete="CASCADE",
                name="fk_notifications_project_id_projects",
            ),
            nullable=False,
        ),
        sa.Column(
            "sweep_id",
            ID,
            sa.ForeignKey("sweeps.id", ondelete="CASCADE", name="fk_notifications_sweep_id_sweeps"),
            nullable=True,
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("failed_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("key", name="uq_notifications_key"),
    )
    op.create_index("ix_notifications_project_id", "notifications", ["project_id"])
    op.create_index("ix_notifications_sweep_id", "notifications", ["sweep_id"])
    op.create_index("ix_notifications_due", "notifications", ["delivered_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_sweep_id", table_name="notifications")
    op.drop_index("ix_notifications_project_id", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_sweep_updated")
        batch_op.drop_constraint("uq_findings_trial_id", type_="unique")
        batch_op.drop_column("provisional")
        batch_op.drop_column("active")
        batch_op.drop_column("updated_at")
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_column("analysis")
        batch_op.drop_column("analyzed_step")
        batch_op.drop_column("stop_status")
        batch_op.drop_column("kind")
