"""Initial schema: studies, trials, trial_params, trial_values.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("scheduler", sa.String(), nullable=False),
        sa.Column("num_trials", sa.Integer(), nullable=True),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_studies"),
        sa.UniqueConstraint("name", name="uq_studies_name"),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("metrics_json", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("node", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("steps", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name="fk_trials_study_id_studies", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.UniqueConstraint("study_id", "number", name="uq_trials_study_id_number"),
    )
    op.create_index("ix_trials_study_id_state_value", "trials", ["study_id", "state", "value"])
    op.create_table(
        "trial_params",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value_json", sa.Text(), nullable=False),
        sa.Column("value_float", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_trial_params_trial_id_trials", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trial_id", "name", name="pk_trial_params"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_trial_params_name_value_float", "trial_params", ["name", "value_float"])
    op.create_table(
        "trial_values",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_trial_values_trial_id_trials", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trial_id", "metric", "step", name="pk_trial_values"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("trial_values")
    op.drop_index("ix_trial_params_name_value_float", table_name="trial_params")
    op.drop_table("trial_params")
    op.drop_index("ix_trials_study_id_state_value", table_name="trials")
    op.drop_table("trials")
    op.drop_table("studies")
