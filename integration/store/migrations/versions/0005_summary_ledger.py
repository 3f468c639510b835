"""Treatment-summary delivery: the summary ledger and the trigger scan's change-feed cursor.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "summary_delivery",
        sa.Column("pk", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("referrer", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("set_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("document_id", sa.String(length=64), nullable=True),
        sa.Column("replaces_pk", _BIG_ID, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prepared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('due', 'prepared', 'sent', 'dead', 'skipped')", name=op.f("ck_summary_delivery_state")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_summary_delivery")),
        sa.UniqueConstraint("set_id", "version", name=op.f("uq_summary_delivery_set_id_version")),
    )
    with op.batch_alter_table("summary_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_summary_delivery_state_pk"), ["state", "pk"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_summary_delivery_patient_id_referrer"), ["patient_id", "referrer"], unique=False
        )
    op.create_table(
        "summary_cursor",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_summary_cursor")),
    )


def downgrade() -> None:
    op.drop_table("summary_cursor")
    with op.batch_alter_table("summary_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summary_delivery_patient_id_referrer"))
        batch_op.drop_index(batch_op.f("ix_summary_delivery_state_pk"))
    op.drop_table("summary_delivery")
