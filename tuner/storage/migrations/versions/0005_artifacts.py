"""Checkpoints and models: the ``artifacts`` table, and each trial's ``parent``.

One row per checkpoint or model a trial stored in the study's artifacts store: its
trial, step, kind ("checkpoint" or "model"), URI and size. Rows go when the files are
deleted (``artifacts.keep``) and with their trial. ``trials.parent`` is the number of
the trial whose checkpoint a trial started from (Population Based Training); NULL for
every trial written before this revision, and for every trial of other searches.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain nullable ADD COLUMN: no table rebuild on SQLite, no row rewritten.
    op.add_column("trials", sa.Column("parent", sa.Integer(), nullable=True))
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_artifacts_trial_id_trials", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("uri", name="uq_artifacts_uri"),
    )
    op.create_index("ix_artifacts_trial_id_kind_step", "artifacts", ["trial_id", "kind", "step"])


def downgrade() -> None:
    op.drop_index("ix_artifacts_trial_id_kind_step", table_name="artifacts")
    op.drop_table("artifacts")
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0002 and 0003.
    op.drop_column("trials", "parent")
