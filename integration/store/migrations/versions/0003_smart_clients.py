"""SMART Backend Services: client registry, seen assertion ids (jti) and hashed access tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smart_client",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(jwks IS NULL) <> (jwks_url IS NULL)", name=op.f("ck_smart_client_key_source")),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_smart_client")),
        sa.UniqueConstraint("name", name=op.f("uq_smart_client_name")),
    )
    op.create_table(
        "smart_jti",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["smart_client.client_id"], name=op.f("fk_smart_jti_client_id_smart_client")
        ),
        sa.PrimaryKeyConstraint("client_id", "jti_hash", name=op.f("pk_smart_jti")),
    )
    with op.batch_alter_table("smart_jti", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_smart_jti_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "smart_access_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["smart_client.client_id"],
            name=op.f("fk_smart_access_token_client_id_smart_client"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_smart_access_token")),
    )
    with op.batch_alter_table("smart_access_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_smart_access_token_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_smart_access_token_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("smart_access_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smart_access_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_smart_access_token_client_id"))

    op.drop_table("smart_access_token")
    with op.batch_alter_table("smart_jti", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smart_jti_expires_at"))

    op.drop_table("smart_jti")
    op.drop_table("smart_client")
