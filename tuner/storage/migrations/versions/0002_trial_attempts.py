"""Trial attempts: how many times a trial ran, and each failed attempt's error.

A trial whose worker process or node died is run again (``limits.max_retries``); it
keeps its number and params. ``attempts`` counts its runs (1 for a trial never
retried, which every existing trial gets) and ``attempt_errors_json`` holds the error
of each attempt that died, oldest first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs with server defaults: no table rebuild on SQLite, and every
    # existing row gets attempts=1 and no attempt errors.
    op.add_column(
        "trials", sa.Column("attempts", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    op.add_column(
        "trials",
        sa.Column("attempt_errors_json", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch rebuild would drop the
    # trials table, and with foreign keys on that deletes every param and value.
    op.drop_column("trials", "attempt_errors_json")
    op.drop_column("trials", "attempts")
