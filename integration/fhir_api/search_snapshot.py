"""`_sort` paging over the store as the first page saw it, so updates during paging neither repeat nor skip.

A sort key an update can change (`_lastUpdated`, a date) moves a resource across the cursor between
two pages: it is sent twice when it moves past the cursor, never when it moves before it. So the
first page notes the instant its transaction saw the store at (the latest stamp of the type: intake
stamps versions under the serialized-writer lock, so later commits carry later stamps), and every
later page keeps each resource where it stood then: rows unchanged since are paged as stored, rows
changed since keep their sort keys as of then (from their version current at that instant), rows
created since are left out (they were not there). A changed row is served as it is now, and only
while it still matches: the index holds current values only. Run each page in one transaction that
sees one snapshot (search_api.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from integration.fhir_api.compartment import PatientScope
from integration.fhir_api.search_query import SearchError, SearchQuery
from integration.fhir_api.search_sql import matches, sort_names
from integration.store.keys import grouped_chunks
from integration.store.schema import fhir_resource, fhir_resource_version
from integration.store.search_extract import LOWEST, extract

# Matches changed since a paging began that a page will place by their old keys; beyond it the
# client is asked to search again (each costs a version read and three bound parameters a key).
MAX_MOVED = 500
R = fhir_resource.c
V = fhir_resource_version.c


def snapshot_instant(conn: Connection, resource_type: str) -> datetime | None:
    """The latest version stamp of the type this transaction sees (an index lookup)."""
    return conn.execute(select(func.max(R.last_updated)).where(R.resource_type == resource_type)).scalar_one()


def moved_since(conn: Connection, query: SearchQuery, scope: PatientScope) -> dict[str, tuple[object, ...]]:
    """Matches changed after `query.snapshot` that existed then: id -> their sort keys as of then."""
    at = query.snapshot
    if at is None:
        return {}
    changed = (
        conn.execute(select(R.id).where(*matches(query, scope), R.last_updated > at).limit(MAX_MOVED + 1))
        .scalars()
        .all()
    )
    if len(changed) > MAX_MOVED:
        raise SearchError(
            f"more than {MAX_MOVED} matches changed since this paging began; start the search again"
        )
    names = sort_names(query)
    moved: dict[str, tuple[object, ...]] = {}
    for resource_type, chunk in grouped_chunks((query.resource_type, i) for i in changed):
        latest: dict[str, Any] = {}
        rows = conn.execute(
            select(V.id, V.version_id, V.last_updated, V.deleted, V.content).where(
                V.resource_type == resource_type, V.id.in_(chunk), V.last_updated <= at
            )
        )
        for row in rows:
            if row.id not in latest or row.version_id > latest[row.id].version_id:
                latest[row.id] = row
        for resource_id, row in latest.items():
            if not row.deleted and row.content is not None:
                moved[resource_id] = _keys_then(names, resource_id, row.last_updated, row.content)
    return moved


def _keys_then(
    names: list[tuple[str, bool]], resource_id: str, last_updated: datetime, content: str
) -> tuple[object, ...]:
    """The sort keys a version had, computed as search_sql computes them from the index."""
    dates: set[tuple[str, datetime, datetime]] | None = None
    keys: list[object] = []
    for name, _ in names:
        if name == "_id":
            keys.append(resource_id)
        elif name == "_lastUpdated":
            keys.append(last_updated)
        else:
            if dates is None:
                dates = extract(orjson.loads(content)).dates
            keys.append(min((low for param, low, _ in dates if param == name), default=LOWEST))
    return tuple(keys)
