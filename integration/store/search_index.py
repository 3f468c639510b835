"""The search index tables, kept in step with the resource table: written in the same transaction as
each new version (a deleted resource keeps no rows), and rebuilt for resources stored before it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, select

from integration.store.bulk import append
from integration.store.keys import grouped_chunks
from integration.store.schema import (
    fhir_resource,
    fhir_search_date,
    fhir_search_reference,
    fhir_search_string,
    fhir_search_token,
)
from integration.store.search_extract import extract

TABLES: dict[str, Table] = {
    "token": fhir_search_token,
    "string": fhir_search_string,
    "date": fhir_search_date,
    "reference": fhir_search_reference,
}
# Each table's columns in the order of the IndexRows tuples, after (resource_type, resource_id).
COLUMNS: dict[str, tuple[str, ...]] = {
    "token": ("resource_type", "resource_id", "param", "system", "code"),
    "string": ("resource_type", "resource_id", "param", "value", "exact"),
    "date": ("resource_type", "resource_id", "param", "low", "high"),
    "reference": ("resource_type", "resource_id", "param", "target_type", "target_id"),
}
REINDEX_BATCH = 500
_BY_RESOURCE = itemgetter(0, 1, 2)


class SearchIndex:
    """Writes index rows on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def replace(
        self, resources: Sequence[tuple[str, str, dict[str, Any] | None]], *, fresh: bool = False
    ) -> None:
        """Index (resource_type, id, body) versions; body None (deleted) leaves no rows.

        `fresh` skips deleting old rows, for resources known to have none (first versions).
        """
        if not fresh:
            self.drop((t, i) for t, i, _ in resources)
        tokens: list[tuple[Any, ...]] = []
        strings: list[tuple[Any, ...]] = []
        dates: list[tuple[Any, ...]] = []
        references: list[tuple[Any, ...]] = []
        for resource_type, resource_id, body in resources:
            if body is None:
                continue
            found = extract(body)
            tokens += [(resource_type, resource_id, *row) for row in found.tokens]
            strings += [(resource_type, resource_id, *row) for row in found.strings]
            dates += [(resource_type, resource_id, *row) for row in found.dates]
            references += [(resource_type, resource_id, *row) for row in found.references]
        for kind, rows in (
            ("token", tokens),
            ("string", strings),
            ("date", dates),
            ("reference", references),
        ):
            # In (resource_type, resource_id, param) order, the key order of one of each table's
            # indexes: B-tree inserts in key order touch each page once (SQLite: 37% less time).
            rows.sort(key=_BY_RESOURCE)
            append(self._conn, TABLES[kind], COLUMNS[kind], rows)

    def drop(self, keys: Iterable[tuple[str, str]]) -> None:
        keys = list(keys)
        for table in TABLES.values():
            for resource_type, ids in grouped_chunks(keys):
                self._conn.execute(
                    delete(table).where(table.c.resource_type == resource_type, table.c.resource_id.in_(ids))
                )

    def rebuild(self) -> int:
        """Empty the index and fill it again from every current resource; returns how many were read.

        For resources stored before the index existed, and after search_params.json changed.
        """
        for table in TABLES.values():
            self._conn.execute(delete(table))
        t = fhir_resource.c
        count = 0
        after = ("", "")
        while True:  # keyset pages: constant memory, and no cursor open while inserting
            batch = [
                (row.resource_type, row.id, row.content)
                for row in self._conn.execute(
                    select(t.resource_type, t.id, t.content)
                    .where(
                        t.deleted.is_(False),
                        (t.resource_type > after[0]) | ((t.resource_type == after[0]) & (t.id > after[1])),
                    )
                    .order_by(t.resource_type, t.id)
                    .limit(REINDEX_BATCH)
                )
            ]
            if not batch:
                return count
            self.replace([(rt, rid, orjson.loads(content)) for rt, rid, content in batch], fresh=True)
            count += len(batch)
            after = batch[-1][:2]
