"""Rate-limit counters shared by every worker process (the SMART token endpoint's limits).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_window",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_limit_window")),
    )
    op.create_index(op.f("ix_rate_limit_window_window_start"), "rate_limit_window", ["window_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_limit_window_window_start"), table_name="rate_limit_window")
    op.drop_table("rate_limit_window")
