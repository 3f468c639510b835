"""Sync to external EHRs: destination state, outbox, lanes and runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_destination",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("cursor_seq", sa.BigInteger(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("breaker_state", sa.String(length=16), nullable=False),
        sa.Column("breaker_failures", sa.Integer(), nullable=False),
        sa.Column("breaker_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("capabilities", sa.Text(), nullable=True),
        sa.Column("capabilities_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_destination")),
    )
    op.create_table(
        "sync_outbox",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=160), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("path", sa.String(length=2000), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.CheckConstraint("kind IN ('resource', 'request')", name=op.f("ck_sync_outbox_kind")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name=op.f("ck_sync_outbox_status")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_sync_outbox")),
        sa.UniqueConstraint("destination", "dedupe_key", name=op.f("uq_sync_outbox_destination_dedupe_key")),
    )
    with op.batch_alter_table("sync_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_outbox_destination_status_pk"),
            ["destination", "status", "pk"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_sync_outbox_destination_lane_pk"), ["destination", "lane", "pk"], unique=False
        )
    op.create_table(
        "sync_lane",
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=160), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("destination", "lane", name=op.f("pk_sync_lane")),
    )
    op.create_table(
        "sync_run",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("active_destination", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("triggered_by", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'done', 'failed', 'abandoned')", name=op.f("ck_sync_run_state")
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_sync_run")),
        sa.UniqueConstraint("active_destination", name=op.f("uq_sync_run_active_destination")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_run_destination_started_at"), ["destination", "started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_run_destination_started_at"))
    op.drop_table("sync_run")
    op.drop_table("sync_lane")
    with op.batch_alter_table("sync_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_outbox_destination_lane_pk"))
        batch_op.drop_index(batch_op.f("ix_sync_outbox_destination_status_pk"))
    op.drop_table("sync_outbox")
    op.drop_table("sync_destination")
