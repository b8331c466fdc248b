"""Several objectives and constraints: each trial's objective values and feasibility.

``values_json`` holds every objective's final value in the order of the spec's
``objectives`` (one value for a single-objective study), ``feasible`` whether every
constraint held, and ``constraints_json`` each constrained metric's final value. They
are written when a trial finishes; rows written before this revision keep NULL there,
which reads as "values: [value], feasible" (no study had constraints before); a trial
missing an objective gets JSON null in values_json.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain nullable ADD COLUMNs: no table rebuild on SQLite, no row rewritten anywhere.
    op.add_column("trials", sa.Column("values_json", sa.Text(), nullable=True))
    op.add_column("trials", sa.Column("feasible", sa.Boolean(), nullable=True))
    op.add_column("trials", sa.Column("constraints_json", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0002: a batch rebuild would
    # drop the trials table, and with foreign keys on that deletes every param and value.
    op.drop_column("trials", "constraints_json")
    op.drop_column("trials", "feasible")
    op.drop_column("trials", "values_json")
