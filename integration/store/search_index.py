"""The search index tables, kept in step with the resource table: written in the same transaction as
each new version (a deleted resource keeps no rows), and rebuilt for resources stored before it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, insert, select

from integration.store.keys import grouped_chunks
from integration.store.schema import (
    fhir_resource,
    fhir_search_date,
    fhir_search_reference,
    fhir_search_string,
    fhir_search_token,
)
from integration.store.search_extract import IndexRows, extract

TABLES: dict[str, Table] = {
    "token": fhir_search_token,
    "string": fhir_search_string,
    "date": fhir_search_date,
    "reference": fhir_search_reference,
}
REINDEX_BATCH = 500


class SearchIndex:
    """Writes index rows on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def replace(self, resources: Sequence[tuple[str, str, str | None]], *, fresh: bool = False) -> None:
        """Index (resource_type, id, content) versions; content None (deleted) leaves no rows.

        `fresh` skips deleting old rows, for resources known to have none (first versions).
        """
        if not fresh:
            self.drop((t, i) for t, i, _ in resources)
        rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in TABLES}
        for resource_type, resource_id, content in resources:
            if content is not None:
                _collect(rows, resource_type, resource_id, extract(orjson.loads(content)))
        for kind, values in rows.items():
            if values:
                self._conn.execute(insert(TABLES[kind]), values)

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
            self.replace(batch, fresh=True)
            count += len(batch)
            after = batch[-1][:2]


def _collect(
    rows: dict[str, list[dict[str, Any]]], resource_type: str, resource_id: str, found: IndexRows
) -> None:
    head = {"resource_type": resource_type, "resource_id": resource_id}
    rows["token"] += [{**head, "param": p, "system": s, "code": c} for p, s, c in found.tokens]
    rows["string"] += [{**head, "param": p, "value": v, "exact": e} for p, v, e in found.strings]
    rows["date"] += [{**head, "param": p, "low": lo, "high": hi} for p, lo, hi in found.dates]
    rows["reference"] += [
        {**head, "param": p, "target_type": tt, "target_id": ti} for p, tt, ti in found.references
    ]
