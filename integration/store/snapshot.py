"""The store as it was at one instant, streamed: what `$export` writes, whatever intake does meanwhile.

Intake stamps every version under the serialized-writer lock, so `last_updated <= at` selects exactly
the versions committed by then. Rows changed after `at` are read back from the version history. Run
the reads of one snapshot in one transaction (`snapshot_reader`) so the two passes agree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from integration.store.keys import CHUNK
from integration.store.schema import fhir_resource, fhir_resource_version

_BATCH = 500  # rows fetched at a time: the worker's memory is bounded by this many resources


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    resource_type: str
    id: str
    patient_id: str | None
    deleted: bool
    content: str | None


@contextmanager
def snapshot_reader(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees a single snapshot (PostgreSQL REPEATABLE READ; SQLite WAL reads)."""
    options: dict[str, object] = {"stream_results": True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


def rows_as_of(
    conn: Connection,
    resource_type: str,
    at: datetime,
    *,
    since: datetime | None = None,
    patients: Collection[str] | None = None,
    with_deleted: bool = False,
) -> Iterator[SnapshotRow]:
    """Each resource of the type as it was at `at`, changed after `since`; deleted ones only if asked.

    `patients` None: every resource of the type; otherwise only those in these patients' compartments.
    """
    t = fhir_resource.c
    columns = (t.resource_type, t.id, t.patient_id, t.deleted, t.content)
    for chunk in _chunks(patients):
        members = None if chunk is None else set(chunk)
        query = select(*columns).where(t.resource_type == resource_type, t.last_updated <= at)
        if since is not None:
            query = query.where(t.last_updated > since)
        if not with_deleted:
            query = query.where(t.deleted.is_(False))
        if chunk is not None:
            query = query.where(t.patient_id.in_(chunk))
        for row in conn.execution_options(yield_per=_BATCH).execute(query):
            yield SnapshotRow(*row)
        changed = select(t.id).where(t.resource_type == resource_type, t.last_updated > at)
        if chunk is not None:
            changed = changed.where(t.patient_id.in_(chunk))
        for resource_id in list(conn.execute(changed).scalars()):
            older = _version_at(conn, resource_type, resource_id, at)
            if older is None or (since is not None and older[0] <= since):
                continue
            row = SnapshotRow(resource_type, resource_id, *older[1:])
            if (with_deleted or not row.deleted) and (members is None or row.patient_id in members):
                yield row


def resource_at(conn: Connection, resource_type: str, resource_id: str, at: datetime) -> SnapshotRow | None:
    """One resource as it was at `at` (None when it did not exist yet)."""
    t = fhir_resource.c
    row = conn.execute(
        select(t.last_updated, t.patient_id, t.deleted, t.content).where(
            t.resource_type == resource_type, t.id == resource_id
        )
    ).first()
    if row is None:
        return None
    found = tuple(row) if row[0] <= at else _version_at(conn, resource_type, resource_id, at)
    return SnapshotRow(resource_type, resource_id, *found[1:]) if found else None


def _version_at(
    conn: Connection, resource_type: str, resource_id: str, at: datetime
) -> tuple[datetime, str | None, bool, str | None] | None:
    v = fhir_resource_version.c
    row = conn.execute(
        select(v.last_updated, v.patient_id, v.deleted, v.content)
        .where(v.resource_type == resource_type, v.id == resource_id, v.last_updated <= at)
        .order_by(v.version_id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1], row[2], row[3]) if row else None


def _chunks(patients: Collection[str] | None) -> Iterator[list[str] | None]:
    if patients is None:
        yield None
        return
    ordered = sorted(patients)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]
