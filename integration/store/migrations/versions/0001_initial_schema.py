"""Initial schema: clinic records, FHIR resources with history, change feed, tokens, audit, leases.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25
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
        "api_token",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('clinic', 'admin')", name=op.f("ck_api_token_role")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_api_token")),
        sa.UniqueConstraint("name", name=op.f("uq_api_token_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    op.create_table(
        "audit_event",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=True),
        sa.Column("entity", sa.String(length=200), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_event_patient_id_recorded_at"), ["patient_id", "recorded_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_event_recorded_at"), ["recorded_at"], unique=False)

    op.create_table(
        "clinic_record",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("clinic_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('practitioner', 'patient', 'referral', 'session', 'assessment')",
            name=op.f("ck_clinic_record_kind"),
        ),
        sa.CheckConstraint("source IN ('api', 'csv', 'xml')", name=op.f("ck_clinic_record_source")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_clinic_record_version")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_clinic_record")),
        sa.UniqueConstraint(
            "kind", "clinic_id", "version", name=op.f("uq_clinic_record_kind_clinic_id_version")
        ),
    )
    op.create_table(
        "fhir_resource_version",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("resource_type", "id", "version_id", name=op.f("pk_fhir_resource_version")),
    )
    with op.batch_alter_table("fhir_resource_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fhir_resource_version_resource_type_last_updated"),
            ["resource_type", "last_updated"],
            unique=False,
        )

    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lease")),
    )
    op.create_table(
        "change_feed",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_feed")),
        sa.UniqueConstraint(
            "resource_type",
            "resource_id",
            "version_id",
            name=op.f("uq_change_feed_resource_type_resource_id_version_id"),
        ),
    )
    op.create_table(
        "clinic_record_head",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("clinic_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["kind", "clinic_id", "version"],
            ["clinic_record.kind", "clinic_record.clinic_id", "clinic_record.version"],
            name=op.f("fk_clinic_record_head_kind_clinic_id_version_clinic_record"),
        ),
        sa.PrimaryKeyConstraint("kind", "clinic_id", name=op.f("pk_clinic_record_head")),
    )
    with op.batch_alter_table("clinic_record_head", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinic_record_head_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "fhir_resource",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("source_record_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_record_pk"],
            ["clinic_record.pk"],
            name=op.f("fk_fhir_resource_source_record_pk_clinic_record"),
        ),
        sa.PrimaryKeyConstraint("resource_type", "id", name=op.f("pk_fhir_resource")),
    )
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fhir_resource_patient_id_resource_type"),
            ["patient_id", "resource_type"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_fhir_resource_resource_type_last_updated"),
            ["resource_type", "last_updated"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_resource_resource_type_last_updated"))
        batch_op.drop_index(batch_op.f("ix_fhir_resource_patient_id_resource_type"))

    op.drop_table("fhir_resource")
    with op.batch_alter_table("clinic_record_head", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinic_record_head_patient_id"))

    op.drop_table("clinic_record_head")
    op.drop_table("change_feed")
    op.drop_table("lease")
    with op.batch_alter_table("fhir_resource_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_resource_version_resource_type_last_updated"))

    op.drop_table("fhir_resource_version")
    op.drop_table("clinic_record")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_recorded_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_patient_id_recorded_at"))

    op.drop_table("audit_event")
    op.drop_table("api_token")
