"""Repository of FHIR resources: current versions, full history and the change feed, written together.

Content is stored as the serialized R4 JSON bytes (with meta.versionId and meta.lastUpdated set
here), so every reader serves bytes and nothing is re-validated on the way out. A new version is
written only when the content hash differs from the current one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Select, Table, bindparam, delete, select, text, update

from integration.store.bulk import append
from integration.store.keys import chunk_for, grouped_chunks, one_of
from integration.store.schema import change_feed, fhir_resource, fhir_resource_source, fhir_resource_version
from integration.store.search_index import SearchIndex


@dataclass(frozen=True, slots=True)
class ResourceState:
    """What the store holds now for one resource."""

    version_id: int
    content_hash: str
    deleted: bool
    patient_id: str | None


@dataclass(frozen=True, slots=True)
class ResourceWrite:
    """One new version: `content` None means the resource is deleted."""

    resource_type: str
    id: str
    version_id: int
    content_hash: str
    content: str | None
    patient_id: str | None
    # The content already parsed (as the writer built it), so indexing need not parse it again.
    parsed: dict[str, Any] | None = None

    def body(self) -> dict[str, Any] | None:
        """The content as a dict; None for a deletion."""
        if self.content is None:
            return None
        return self.parsed if self.parsed is not None else orjson.loads(self.content)


@dataclass(frozen=True, slots=True)
class StoredResource:
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: str | None
    patient_id: str | None


def _read_query(table: Table) -> Select[Any]:
    t = table.c
    return select(
        t.resource_type, t.id, t.version_id, t.last_updated, t.deleted, t.content, t.patient_id
    ).where(t.resource_type == bindparam("resource_type"), t.id == bindparam("id"))


_RESOURCE_COLUMNS = (
    "resource_type",
    "id",
    "version_id",
    "last_updated",
    "patient_id",
    "deleted",
    "content_hash",
    "content",
)
_BY_KEY = itemgetter(0, 1, 2)
_FEED_COLUMNS = ("resource_type", "resource_id", "version_id", "patient_id", "deleted", "recorded_at")
_LINK_COLUMNS = ("source_kind", "source_id", "resource_type", "resource_id")
# One statement for every moved current row (executemany), not one compiled per resource.
_MOVE_CURRENT = (
    update(fhir_resource)
    .where(
        fhir_resource.c.resource_type == bindparam("_type"),
        fhir_resource.c.id == bindparam("_id"),
        fhir_resource.c.version_id == bindparam("_previous"),
    )
    .values({c: bindparam(f"_new_{c}") for c in _RESOURCE_COLUMNS[2:]})
)
_NEW_KEYS = tuple(f"_new_{c}" for c in _RESOURCE_COLUMNS[2:])
_UNLINK = delete(fhir_resource_source).where(
    *(fhir_resource_source.c[c] == bindparam(c) for c in _LINK_COLUMNS)
)

# Built once: reads run on every FHIR request, and building a statement costs more than running it.
_READ_CURRENT = _read_query(fhir_resource)
_READ_VERSION = _read_query(fhir_resource_version).where(
    fhir_resource_version.c.version_id == bindparam("version_id")
)


class ResourceRepository:
    """Reads and writes FHIR resources on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def states(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ResourceState]:
        """Current state of the given (resource_type, id) keys that exist (deleted ones included)."""
        t = fhir_resource.c
        found: dict[tuple[str, str], ResourceState] = {}
        backend = self._conn.dialect.name
        for resource_type, ids in grouped_chunks(keys, chunk_for(backend)):
            rows = self._conn.execute(
                select(t.id, t.version_id, t.content_hash, t.deleted, t.patient_id).where(
                    t.resource_type == resource_type, one_of(t.id, ids, backend)
                )
            )
            for row in rows:
                state = ResourceState(row.version_id, row.content_hash, row.deleted, row.patient_id)
                found[(resource_type, row.id)] = state
        return found

    def produced_by(self, source_kind: str, source_ids: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
        """The resources each clinic record produces now, by record id."""
        t = fhir_resource_source.c
        out: dict[str, set[tuple[str, str]]] = {}
        for _, ids in grouped_chunks((source_kind, source_id) for source_id in source_ids):
            rows = self._conn.execute(
                select(t.source_id, t.resource_type, t.resource_id).where(
                    t.source_kind == source_kind, t.source_id.in_(ids)
                )
            )
            for row in rows:
                out.setdefault(row.source_id, set()).add((row.resource_type, row.resource_id))
        return out

    def refresh_statistics(self) -> list[str]:
        """ANALYZE the FHIR tables whose planner statistics fell far behind (PostgreSQL only).

        Before autovacuum's first ANALYZE of a fast-growing table, PostgreSQL plans the intake's
        `resource_type = ? AND id IN (...)` lookups as scans of every row of the type: measured
        20 ms a lookup at 25k rows and growing with the table. Refreshing when the rows changed
        since the last ANALYZE exceed half the table (and 1,000) keeps them primary-key lookups;
        that happens a handful of times while a table grows, then autovacuum keeps up.
        """
        if self._conn.dialect.name != "postgresql":
            return []
        stale = (
            self._conn.execute(
                text(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                    " AND relname IN ('fhir_resource', 'fhir_resource_version', 'fhir_resource_source')"
                    " AND n_mod_since_analyze > GREATEST(1000, n_live_tup / 2)"
                )
            )
            .scalars()
            .all()
        )
        for table in stale:
            self._conn.exec_driver_sql(f'ANALYZE "{table}"')  # names come from the fixed list above
        return list(stale)

    def producers(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """The (source_kind, source_id) records producing each of these resources now."""
        t = fhir_resource_source.c
        found: dict[tuple[str, str], set[tuple[str, str]]] = {}
        backend = self._conn.dialect.name
        for resource_type, ids in grouped_chunks(keys, chunk_for(backend)):
            rows = self._conn.execute(
                select(t.resource_id, t.source_kind, t.source_id).where(
                    t.resource_type == resource_type, one_of(t.resource_id, ids, backend)
                )
            )
            for row in rows:
                found.setdefault((resource_type, row.resource_id), set()).add(
                    (row.source_kind, row.source_id)
                )
        return found

    def link(self, links: Sequence[tuple[str, str, str, str]]) -> None:
        """Record (source_kind, source_id, resource_type, resource_id) production links."""
        append(self._conn, fhir_resource_source, _LINK_COLUMNS, links)

    def unlink(self, links: Sequence[tuple[str, str, str, str]]) -> None:
        if links:
            self._conn.execute(_UNLINK, [dict(zip(_LINK_COLUMNS, x, strict=True)) for x in links])

    def write(self, writes: Sequence[ResourceWrite], *, now: datetime) -> None:
        """Append the versions to history and the change feed, move the current rows and the search index."""
        if not writes:
            return
        rows = [
            (
                w.resource_type,
                w.id,
                w.version_id,
                now,
                w.patient_id,
                w.content is None,
                w.content_hash,
                w.content,
            )
            for w in writes
        ]
        rows.sort(key=_BY_KEY)  # primary-key order: B-tree inserts touch each page once
        append(self._conn, fhir_resource_version, _RESOURCE_COLUMNS, rows)
        append(
            self._conn,
            change_feed,
            _FEED_COLUMNS,
            [(w.resource_type, w.id, w.version_id, w.patient_id, w.content is None, now) for w in writes],
        )
        append(self._conn, fhir_resource, _RESOURCE_COLUMNS, [r for r in rows if r[2] == 1])
        moved = [
            {"_type": r[0], "_id": r[1], "_previous": r[2] - 1, **dict(zip(_NEW_KEYS, r[2:], strict=True))}
            for r in rows
            if r[2] > 1
        ]
        if moved:
            self._conn.execute(_MOVE_CURRENT, moved)
        index = SearchIndex(self._conn)
        index.replace([(w.resource_type, w.id, w.body()) for w in writes if w.version_id == 1], fresh=True)
        index.replace([(w.resource_type, w.id, w.body()) for w in writes if w.version_id > 1])

    def read(
        self, resource_type: str, resource_id: str, version_id: int | None = None
    ) -> StoredResource | None:
        """The current version (or a given one) of one resource, deleted or not."""
        params = {"resource_type": resource_type, "id": resource_id}
        if version_id is None:
            row = self._conn.execute(_READ_CURRENT, params).first()
        else:
            row = self._conn.execute(_READ_VERSION, {**params, "version_id": version_id}).first()
        return StoredResource(*row) if row else None

    def history(self, resource_type: str, resource_id: str) -> list[StoredResource]:
        t = fhir_resource_version.c
        rows = self._conn.execute(
            select(t.resource_type, t.id, t.version_id, t.last_updated, t.deleted, t.content, t.patient_id)
            .where(t.resource_type == resource_type, t.id == resource_id)
            .order_by(t.version_id)
        )
        return [StoredResource(*row) for row in rows]

    def changes_since(self, seq: int, limit: int = 1000) -> list[dict[str, object]]:
        """Change-feed rows after `seq`, oldest first."""
        t = change_feed.c
        rows = self._conn.execute(select(change_feed).where(t.seq > seq).order_by(t.seq).limit(limit))
        return [dict(row._mapping) for row in rows]
