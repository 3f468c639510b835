"""Repository of clinic records: versions, heads, idempotency and referential lookups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from integration.store.keys import grouped_chunks
from integration.store.schema import clinic_record, clinic_record_head


@dataclass(frozen=True, slots=True)
class Head:
    """The current version of one clinic record."""

    kind: str
    clinic_id: str
    version: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to write; `version` 1 creates the head, any other moves it."""

    kind: str
    clinic_id: str
    version: int
    content_hash: str
    payload: str
    patient_id: str | None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    kind: str
    clinic_id: str
    version: int
    content_hash: str
    payload: str
    source: str
    received_at: datetime


class ClinicRecordRepository:
    """Reads and writes clinic records on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def heads(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Head]:
        """Current heads of the given (kind, clinic_id) keys that exist."""
        found: dict[tuple[str, str], Head] = {}
        t = clinic_record_head.c
        for kind, ids in grouped_chunks(keys):
            rows = self._conn.execute(
                select(t.kind, t.clinic_id, t.version, t.content_hash).where(
                    t.kind == kind, t.clinic_id.in_(ids)
                )
            )
            for row in rows:
                found[(row.kind, row.clinic_id)] = Head(
                    row.kind, row.clinic_id, row.version, row.content_hash
                )
        return found

    def existing(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of the given (kind, clinic_id) keys name a stored record."""
        return set(self.heads(keys))

    def write(
        self, versions: Sequence[NewVersion], *, source: str, received_at: datetime, request_id: str | None
    ) -> None:
        """Insert the versions and move their heads, in the caller's transaction.

        A concurrent writer of the same record makes the unique (kind, clinic_id, version) or the
        head's primary key fail, so two writers can never both believe they wrote version N.
        """
        if not versions:
            return
        rows = [
            {
                "kind": v.kind,
                "clinic_id": v.clinic_id,
                "version": v.version,
                "content_hash": v.content_hash,
                "payload": v.payload,
                "source": source,
                "received_at": received_at,
                "request_id": request_id,
            }
            for v in versions
        ]
        self._conn.execute(insert(clinic_record), rows)
        created = [v for v in versions if v.version == 1]
        moved = [v for v in versions if v.version > 1]
        if created:
            self._conn.execute(
                insert(clinic_record_head),
                [
                    {
                        "kind": v.kind,
                        "clinic_id": v.clinic_id,
                        "version": 1,
                        "content_hash": v.content_hash,
                        "patient_id": v.patient_id,
                        "updated_at": received_at,
                    }
                    for v in created
                ],
            )
        t = clinic_record_head.c
        for v in moved:
            result = self._conn.execute(
                update(clinic_record_head)
                .where(t.kind == v.kind, t.clinic_id == v.clinic_id, t.version == v.version - 1)
                .values(
                    version=v.version,
                    content_hash=v.content_hash,
                    patient_id=v.patient_id,
                    updated_at=received_at,
                )
            )
            if result.rowcount != 1:
                raise ConcurrentUpdate(v.kind, v.clinic_id)

    def get(self, kind: str, clinic_id: str, version: int | None = None) -> StoredRecord | None:
        """One stored version (the current one by default)."""
        r = clinic_record.c
        query = select(r.kind, r.clinic_id, r.version, r.content_hash, r.payload, r.source, r.received_at)
        if version is None:
            h = clinic_record_head.c
            same_version = (h.kind == r.kind) & (h.clinic_id == r.clinic_id) & (h.version == r.version)
            query = query.join(clinic_record_head, same_version).where(
                h.kind == kind, h.clinic_id == clinic_id
            )
        else:
            query = query.where(r.kind == kind, r.clinic_id == clinic_id, r.version == version)
        row = self._conn.execute(query).first()
        return StoredRecord(*row) if row else None

    def versions(self, kind: str, clinic_id: str) -> list[int]:
        r = clinic_record.c
        rows = self._conn.execute(
            select(r.version).where(r.kind == kind, r.clinic_id == clinic_id).order_by(r.version)
        )
        return [row.version for row in rows]


class ConcurrentUpdate(RuntimeError):
    """Another writer moved a record's head between our read and our write; retry the write."""

    def __init__(self, kind: str, clinic_id: str) -> None:
        super().__init__(f"{kind} head moved concurrently")
        self.kind = kind
        self.clinic_id = clinic_id
