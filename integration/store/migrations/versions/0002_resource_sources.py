"""Track which clinic records produce which FHIR resources (replaces fhir_resource.source_record_pk).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_resource_source",
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "source_kind", "source_id", "resource_type", "resource_id", name=op.f("pk_fhir_resource_source")
        ),
    )
    with op.batch_alter_table("fhir_resource_source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fhir_resource_source_resource_type_resource_id"),
            ["resource_type", "resource_id"],
            unique=False,
        )

    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_fhir_resource_source_record_pk_clinic_record"), type_="foreignkey"
        )
        batch_op.drop_column("source_record_pk")


def downgrade() -> None:
    with op.batch_alter_table("fhir_resource", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source_record_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_fhir_resource_source_record_pk_clinic_record"),
            "clinic_record",
            ["source_record_pk"],
            ["pk"],
        )

    with op.batch_alter_table("fhir_resource_source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_resource_source_resource_type_resource_id"))

    op.drop_table("fhir_resource_source")
