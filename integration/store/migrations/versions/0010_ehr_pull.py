"""Pull from EHRs: per-destination watermarks and versions seen, clinic records from source `ehr`,
and room in `sync_run.active_destination` for a destination's pull run beside its push run.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_OLD = "source IN ('api', 'csv', 'xml')"
_NEW = "source IN ('api', 'csv', 'xml', 'ehr')"


def _set_source_check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_clinic_record_source"), "clinic_record", type_="check")
        op.create_check_constraint(op.f("ck_clinic_record_source"), "clinic_record", new)
        return
    # SQLite cannot alter a CHECK; rebuilding clinic_record would need foreign keys off, which cannot
    # change inside this migration's transaction. Rewriting the stored CREATE TABLE text is SQLite's own
    # documented procedure for constraint changes that existing rows already satisfy (lang_altertable,
    # "Making Other Kinds Of Table Schema Changes"); the schema version bump makes connections reload it.
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    changed = bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'clinic_record'",
        (old, new),
    ).rowcount
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    if changed != 1:
        raise RuntimeError("clinic_record's source check was not found")


def upgrade() -> None:
    op.create_table(
        "sync_pull_state",
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", "resource_type", name=op.f("pk_sync_pull_state")),
    )
    op.create_table(
        "sync_pull_seen",
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.Column("version_key", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", "resource_type", "remote_id", name=op.f("pk_sync_pull_seen")),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.alter_column(
            "active_destination", existing_type=sa.String(length=64), type_=sa.String(length=80)
        )
    _set_source_check(_OLD, _NEW)


def downgrade() -> None:
    _set_source_check(_NEW, _OLD)
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.alter_column(
            "active_destination", existing_type=sa.String(length=80), type_=sa.String(length=64)
        )
    op.drop_table("sync_pull_seen")
    op.drop_table("sync_pull_state")
