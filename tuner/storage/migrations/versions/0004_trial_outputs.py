"""Trial output: what each attempt of a trial wrote to stdout and stderr.

One row per attempt that wrote anything: the last 64 KiB of its output (``text``) and
whether earlier output was dropped (``truncated``). A new table: no existing row is
touched, and databases of earlier revisions simply have no output for their trials.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trial_outputs",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("truncated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name="fk_trial_outputs_trial_id_trials",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trial_id", "attempt", name="pk_trial_outputs"),
    )


def downgrade() -> None:
    op.drop_table("trial_outputs")
