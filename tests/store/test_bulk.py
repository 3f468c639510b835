"""Bulk appends store exactly what SQLAlchemy's insert() stores, and fail like it (without row values)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from integration.store.bulk import append
from integration.store.schema import change_feed, fhir_resource, fhir_search_string

COLUMNS = (
    "resource_type",
    "id",
    "version_id",
    "last_updated",
    "patient_id",
    "deleted",
    "content_hash",
    "content",
)
# An aware non-UTC time: UtcDateTime's bind processor must still turn it into UTC.
PARIS = datetime(2026, 3, 2, 18, 0, 0, 123000, tzinfo=timezone(timedelta(hours=1)))
TRICKY = 'line\ttab\nnew "quote" back\\slash é \u2028'


def _rows(prefix: str) -> list[tuple]:
    return [
        (f"T{prefix}", "a", 1, PARIS, None, False, "h", TRICKY),
        (f"T{prefix}", "b", 2, PARIS, "p1", True, "h", None),
    ]


def _raw(conn, table, prefix: str) -> list[tuple]:
    """The stored values as the driver returns them (no result processing): what is on disk."""
    sql = f"SELECT * FROM {table.name} WHERE resource_type = '{prefix}' ORDER BY id"
    return [tuple(r) for r in conn.exec_driver_sql(sql)]


def test_append_stores_what_insert_stores(db):
    with db.writer() as conn:
        conn.execute(insert(fhir_resource), [dict(zip(COLUMNS, r, strict=True)) for r in _rows("orm")])
        append(conn, fhir_resource, COLUMNS, _rows("bulk"))
    with db.reader() as conn:
        via_insert = [r[1:] for r in _raw(conn, fhir_resource, "Torm")]
        via_append = [r[1:] for r in _raw(conn, fhir_resource, "Tbulk")]
        assert via_append == via_insert
        row = conn.execute(select(fhir_resource).where(fhir_resource.c.resource_type == "Tbulk")).first()
        assert row.last_updated == PARIS.astimezone(UTC) and row.content == TRICKY


def test_append_fills_autoincrement_keys_in_row_order(db):
    rows = [(f"T{i}", "x", 1, None, False, PARIS) for i in range(5)]
    with db.writer() as conn:
        append(
            conn,
            change_feed,
            ("resource_type", "resource_id", "version_id", "patient_id", "deleted", "recorded_at"),
            rows,
        )
    with db.reader() as conn:
        feed = conn.execute(
            select(change_feed.c.seq, change_feed.c.resource_type).order_by(change_feed.c.seq)
        ).all()
    assert [t for _, t in feed] == [f"T{i}" for i in range(5)]


def test_append_of_nothing_writes_nothing(db):
    with db.writer() as conn:
        append(conn, fhir_resource, COLUMNS, [])
        assert conn.execute(select(fhir_resource)).first() is None


def test_duplicate_key_raises_integrity_error_and_rolls_back(db):
    with pytest.raises(IntegrityError), db.writer() as conn:
        append(conn, fhir_resource, COLUMNS, _rows("dup"))
        append(conn, fhir_resource, COLUMNS, _rows("dup")[:1])
    with db.reader() as conn:
        assert conn.execute(select(fhir_resource)).first() is None


def test_naive_datetime_is_refused_as_by_insert(db):
    naive = [("Tn", "a", 1, datetime(2026, 1, 1), None, False, "h", "{}")]
    with pytest.raises((StatementError, ValueError)), db.writer() as conn:
        append(conn, fhir_resource, COLUMNS, naive)


def test_errors_do_not_quote_row_values(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    secret = "SECRET-NAME-" * 30
    with pytest.raises(DataError) as caught, db.writer() as conn:
        append(
            conn,
            fhir_search_string,
            ("resource_type", "resource_id", "param", "value", "exact"),
            [("Patient", "p", "name", secret, "x")],
        )
    assert "SECRET" not in str(caught.value) and "value too long" in str(caught.value)
    # A logged traceback shows neither the driver's original error nor its row-quoting context.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
