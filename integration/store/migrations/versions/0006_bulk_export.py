"""Referrer Groups and Bulk Data export: referral links (filled from the stored referrals), export jobs, files.

The referrer Group resources themselves need the clinic configuration (identifier system), so they
are written by `flask --app wsgi db upgrade` / `groups backfill` right after this migration.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    link = op.create_table(
        "referral_link",
        sa.Column("referral_id", sa.String(length=128), nullable=False),
        sa.Column("practitioner_id", sa.String(length=128), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_referral_link")),
    )
    with op.batch_alter_table("referral_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_link_practitioner_id"), ["practitioner_id"], unique=False
        )
    _fill_referral_links(link)

    op.create_table(
        "export_job",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("scope_group_id", sa.String(length=64), nullable=True),
        sa.Column("types", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_format", sa.String(length=40), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("transaction_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq_high", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('system', 'patient', 'group')", name=op.f("ck_export_job_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'complete', 'failed', 'cancelled')",
            name=op.f("ck_export_job_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_job")),
    )
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_job_client_id_status"), ["client_id", "status"])
        batch_op.create_index(batch_op.f("ix_export_job_status_lease_until"), ["status", "lease_until"])

    op.create_table(
        "export_file",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('output', 'error', 'deleted')", name=op.f("ck_export_file_kind")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["export_job.id"], name=op.f("fk_export_file_job_id_export_job"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "name", name=op.f("pk_export_file")),
    )


def _fill_referral_links(link: sa.Table) -> None:
    """One link per current referral, read from the stored records (they passed the contract)."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT r.clinic_id, r.payload FROM clinic_record r JOIN clinic_record_head h"
            " ON h.kind = r.kind AND h.clinic_id = r.clinic_id AND h.version = r.version"
            " WHERE r.kind = 'referral'"
        )
    )
    links = []
    for clinic_id, payload in rows:
        record = json.loads(payload)
        links.append(
            {
                "referral_id": clinic_id,
                "practitioner_id": record["practitioner_id"],
                "patient_id": record["patient_id"],
            }
        )
    if links:
        op.bulk_insert(link, links)


def downgrade() -> None:
    op.drop_table("export_file")
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_job_status_lease_until"))
        batch_op.drop_index(batch_op.f("ix_export_job_client_id_status"))
    op.drop_table("export_job")
    with op.batch_alter_table("referral_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_link_practitioner_id"))
    op.drop_table("referral_link")
