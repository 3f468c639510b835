"""EHR patient links: which EHR Patient (per destination) may update which clinic patient's demographics.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ehr_patient_link",
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("ehr_patient_id", sa.String(length=64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", "patient_id", name=op.f("pk_ehr_patient_link")),
        sa.UniqueConstraint(
            "destination", "ehr_patient_id", name=op.f("uq_ehr_patient_link_destination_ehr_patient_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("ehr_patient_link")
