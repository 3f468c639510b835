"""FHIR search index: typed token/string/date/reference tables, filled from the resources already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integration.store.schema import SearchString, UtcDateTime
from integration.store.search_index import SearchIndex

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _head() -> list[sa.Column]:
    return [
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
    ]


_VALUE_INDEX = {
    "fhir_search_token": ["resource_type", "param", "code", "system", "resource_id"],
    "fhir_search_string": ["resource_type", "param", "value", "resource_id"],
    "fhir_search_date": ["resource_type", "param", "low", "high"],
    "fhir_search_reference": ["resource_type", "param", "target_id", "target_type", "resource_id"],
}


def upgrade() -> None:
    op.create_table(
        "fhir_search_token",
        *_head(),
        sa.Column("system", sa.String(length=512), nullable=True),
        sa.Column("code", sa.String(length=512), nullable=False),
    )
    op.create_table(
        "fhir_search_string",
        *_head(),
        sa.Column("value", SearchString, nullable=False),
        sa.Column("exact", sa.String(length=255), nullable=False),
    )
    op.create_table(
        "fhir_search_date",
        *_head(),
        sa.Column("low", UtcDateTime(), nullable=False),
        sa.Column("high", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "fhir_search_reference",
        *_head(),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=False),
    )
    for table, columns in _VALUE_INDEX.items():
        op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, columns, unique=False)
        by_resource = ["resource_type", "resource_id", "param"]
        op.create_index(op.f(f"ix_{table}_{'_'.join(by_resource)}"), table, by_resource, unique=False)
    op.create_index("ix_change_feed_resource_type_seq", "change_feed", ["resource_type", "seq"], unique=False)
    # Resources stored before this revision get their rows now (the same code intake uses).
    SearchIndex(op.get_bind()).rebuild()


def downgrade() -> None:
    op.drop_index("ix_change_feed_resource_type_seq", table_name="change_feed")
    for table in reversed(list(_VALUE_INDEX)):
        op.drop_table(table)
