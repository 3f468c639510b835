"""Referrer summary transport: the ledger records the hand-off to the outbox; outbox requests name a signer.

`summary_delivery.queued_at`: when a prepared version's requests were enqueued (set in the same
transaction). `sync_outbox.signer`: the name of a signer resolved when the request is sent (a webhook's
HMAC over body and a fresh timestamp), so no signature or secret is stored.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("summary_delivery") as batch:
        batch.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sync_outbox") as batch:
        batch.add_column(sa.Column("signer", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_outbox") as batch:
        batch.drop_column("signer")
    with op.batch_alter_table("summary_delivery") as batch:
        batch.drop_column("queued_at")
