"""Treatment-summary ledger: at most one open `due` row per (patient, referrer).

Duplicates written before (concurrent triggers on PostgreSQL) are merged first: the oldest row keeps
the union of the reasons, the others are deleted (they were prepared from nothing yet).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEX = "uq_summary_delivery_due_pair"


def upgrade() -> None:
    _merge_duplicate_due_rows()
    op.create_index(
        _INDEX,
        "summary_delivery",
        ["patient_id", "referrer"],
        unique=True,
        sqlite_where=sa.text("state = 'due'"),
        postgresql_where=sa.text("state = 'due'"),
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="summary_delivery")


def _merge_duplicate_due_rows() -> None:
    t = sa.table(
        "summary_delivery",
        sa.column("pk", sa.Integer),
        sa.column("patient_id", sa.String),
        sa.column("referrer", sa.String),
        sa.column("state", sa.String),
        sa.column("reasons", sa.Text),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(t.c.pk, t.c.patient_id, t.c.referrer, t.c.reasons)
        .where(t.c.state == "due")
        .order_by(t.c.pk)
    )
    pairs: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for row in rows:
        pairs.setdefault((row.patient_id, row.referrer), []).append((row.pk, row.reasons))
    for rows_of_pair in pairs.values():
        if len(rows_of_pair) < 2:
            continue
        keep = rows_of_pair[0][0]
        reasons = sorted({r for _, text in rows_of_pair for r in json.loads(text)})
        conn.execute(sa.update(t).where(t.c.pk == keep).values(reasons=json.dumps(reasons)))
        conn.execute(sa.delete(t).where(t.c.pk.in_([pk for pk, _ in rows_of_pair[1:]])))
