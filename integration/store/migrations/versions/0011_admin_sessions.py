"""Admin browser sessions: hashed session ids bound to the admin API token that logged in, and the
failed browser logins the login rate limit counts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_session",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("token_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_pk"], ["api_token.pk"], name=op.f("fk_admin_session_token_pk_api_token")
        ),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_admin_session")),
    )
    op.create_index(op.f("ix_admin_session_token_pk"), "admin_session", ["token_pk"], unique=False)
    op.create_index(op.f("ix_admin_session_expires_at"), "admin_session", ["expires_at"], unique=False)
    op.create_table(
        "admin_login_failure",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_admin_login_failure")),
    )
    op.create_index(
        op.f("ix_admin_login_failure_remote_addr_failed_at"),
        "admin_login_failure",
        ["remote_addr", "failed_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_admin_login_failure_failed_at"), "admin_login_failure", ["failed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_login_failure_failed_at"), table_name="admin_login_failure")
    op.drop_index(op.f("ix_admin_login_failure_remote_addr_failed_at"), table_name="admin_login_failure")
    op.drop_table("admin_login_failure")
    op.drop_index(op.f("ix_admin_session_expires_at"), table_name="admin_session")
    op.drop_index(op.f("ix_admin_session_token_pk"), table_name="admin_session")
    op.drop_table("admin_session")
