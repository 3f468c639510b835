"""Type-level search: run the parsed query, add `_include`/`_revinclude`, answer a searchset Bundle.

Entries carry the stored bytes (orjson.Fragment), never re-parsed for JSON. Every included
resource passes the same two gates as a read: the token's scopes (read on its type) and the
compartment rule, checked in SQL, so a Group-restricted client cannot reach other patients through
an include either. Audited as `fhir.search` with the patients whose data left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import orjson
from flask import Response, current_app
from sqlalchemy import Connection, select

from integration.audit import audit
from integration.auth.smart import checking_connection
from integration.auth.smart_clients import Grant
from integration.fhir_api.compartment import PatientScope, patient_scope
from integration.fhir_api.outcomes import render
from integration.fhir_api.search_query import (
    Link,
    SearchError,
    SearchQuery,
    encode_cursor,
    moves_on_update,
    parse,
)
from integration.fhir_api.search_snapshot import moved_since, snapshot_instant
from integration.fhir_api.search_sql import count_query, page_query, visible
from integration.store.keys import grouped_chunks
from integration.store.schema import fhir_resource, fhir_search_reference

MAX_INCLUDED = 2000  # included resources per page; beyond it the bundle says so in an outcome entry
MAX_AUDITED_PATIENTS = 100
R = fhir_resource.c
X = fhir_search_reference.c


def fhir_base() -> str:
    return current_app.config["HORIZON_SETTINGS"].public_base_url.rstrip("/") + "/fhir"


def prefers_strict(prefer: str | None) -> bool:
    """`Prefer: handling=strict` (R4 3.1.1.2.1); lenient is the default."""
    return any(p.strip().lower() == "handling=strict" for p in (prefer or "").replace(";", ",").split(","))


def search(
    resource_type: str,
    authorize: Callable[[Connection | None], Grant],
    pairs: list[tuple[str, str]],
    strict: bool,
    fmt: str,
) -> Response:
    """Answer one search; raises SearchError (400) for parameters that cannot be searched.

    `authorize` checks the token (401/403) in the search's own read transaction, saving one per
    request; a search that cannot be parsed is still refused for its token first.
    """
    try:
        query = parse(resource_type, pairs, strict=strict)
    except SearchError:
        authorize(None)
        raise
    snapshotted = moves_on_update(query)
    with checking_connection(_reader(snapshotted)) as conn:
        grant = authorize(conn)
        return _answer(conn, query, grant, snapshotted, fmt)


def _answer(conn: Connection, query: SearchQuery, grant: Grant, snapshotted: bool, fmt: str) -> Response:
    resource_type = query.resource_type
    entry = audit(
        "fhir.search",
        entity=resource_type,
        detail={"parameters": sorted({name for name, _ in query.canonical})},
    )
    base = fhir_base()
    scope = patient_scope(conn, grant)
    if query.summary_count:
        total = conn.execute(count_query(query, scope)).scalar_one()
        bundle = _bundle(query, base, total, [], None)
        entry.detail["total"] = total
        return render(bundle, fmt)
    moved = moved_since(conn, query, scope)
    stmt, params, date_keys = page_query(query, scope, moved)
    rows = conn.execute(stmt, params).all()
    more = len(rows) > query.count
    rows = rows[: query.count]
    total: int | None = None
    if query.total == "accurate":
        total = conn.execute(count_query(query, scope)).scalar_one()
    elif query.total == "auto" and query.cursor is None and not more:
        total = len(rows)
    cursor = None
    if more:
        snapshot = query.snapshot
        if snapshotted and snapshot is None:
            snapshot = snapshot_instant(conn, resource_type)
        cursor = encode_cursor(tuple(getattr(rows[-1], f"k{i}") for i in range(len(date_keys))), snapshot)
    ids = [row.id for row in rows]
    included, truncated = _included(conn, query, scope, grant, ids)
    entries = [_entry(base, resource_type, r.id, r.content, "match") for r in rows]
    entries += [_entry(base, t, r.id, r.content, "include") for t, r in included]
    if truncated:
        entries.append(_too_many_included())
    patients = sorted(({r.patient_id for r in rows} | {r.patient_id for _, r in included}) - {None})
    entry.detail.update(matches=len(rows), included=len(included), patients=patients[:MAX_AUDITED_PATIENTS])
    if len(patients) == 1:
        entry.patient_id = patients[0]
    bundle = _bundle(query, base, total, entries, cursor)
    return render(bundle, fmt)


@contextmanager
def _reader(consistent: bool) -> Iterator[Connection]:
    """A read transaction; `consistent`: all its statements see one snapshot (PostgreSQL REPEATABLE
    READ; a SQLite read transaction in WAL mode always does), as `_sort` paging needs. Otherwise, on
    PostgreSQL, statements in autocommit: READ COMMITTED gives each its own snapshot anyway."""
    db = current_app.extensions["horizon.db"]
    if db.engine.dialect.name != "postgresql":
        with db.reader() as conn:
            yield conn
        return
    if not consistent:
        with db.autocommit() as conn:
            yield conn
        return
    engine = db.engine
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        yield conn


def _bundle(
    query: SearchQuery, base: str, total: int | None, entries: list[dict[str, Any]], cursor: str | None
) -> dict[str, Any]:
    url = f"{base}/{query.resource_type}"
    self_params = list(query.canonical)
    if query.cursor is not None:
        self_params.append(("_cursor", encode_cursor(query.cursor, query.snapshot)))
    links = [{"relation": "self", "url": _url(url, self_params)}]
    if cursor is not None:
        links.append({"relation": "next", "url": _url(url, [*query.canonical, ("_cursor", cursor)])})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _url(url: str, params: list[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(params)}" if params else url


def _entry(base: str, resource_type: str, resource_id: str, content: str, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{resource_type}/{resource_id}",
        "resource": orjson.Fragment(content),
        "search": {"mode": mode},
    }


def _too_many_included() -> dict[str, Any]:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "warning",
                "code": "too-costly",
                "diagnostics": f"more than {MAX_INCLUDED} resources to include; use a smaller _count",
            }
        ],
    }
    return {"resource": outcome, "search": {"mode": "outcome"}}


def _included(
    conn: Connection, query: SearchQuery, scope: PatientScope, grant: Grant, ids: list[str]
) -> tuple[list[tuple[str, Any]], bool]:
    """Resources the page's `_include`s point at and that point at it (`_revinclude`), deduplicated."""
    if not ids or not (query.includes or query.revincludes):
        return [], False
    wanted: dict[tuple[str, str], None] = {}
    for link in query.includes:
        for target_type, target_id in _targets(conn, link, ids):
            wanted.setdefault((target_type, target_id))
    for link in query.revincludes:
        for source_id in _sources(conn, link, query.resource_type, ids):
            wanted.setdefault((link.source_type, source_id))
    page = {(query.resource_type, i) for i in ids}
    keys = [k for k in wanted if k not in page and grant.allows(k[0], "read")]
    found: list[tuple[str, Any]] = []
    for resource_type, chunk in grouped_chunks(keys):
        rows = conn.execute(
            select(R.id, R.content, R.patient_id)
            .where(R.resource_type == resource_type, R.id.in_(chunk), R.deleted.is_(False))
            .where(visible(scope))
            .order_by(R.id)
        )
        found += [(resource_type, row) for row in rows]
        if len(found) > MAX_INCLUDED:
            return found[:MAX_INCLUDED], True
    return found, False


def _targets(conn: Connection, link: Link, ids: list[str]) -> Iterable[tuple[str, str]]:
    for _, chunk in grouped_chunks((link.source_type, i) for i in ids):
        stmt = select(X.target_type, X.target_id).where(
            X.resource_type == link.source_type, X.param == link.param.name, X.resource_id.in_(chunk)
        )
        if link.target_type is not None:
            stmt = stmt.where(X.target_type == link.target_type)
        for row in conn.execute(stmt):
            if row.target_type is not None:
                yield row.target_type, row.target_id


def _sources(conn: Connection, link: Link, target_type: str, ids: list[str]) -> Iterable[str]:
    for _, chunk in grouped_chunks((target_type, i) for i in ids):
        stmt = select(X.resource_id).where(
            X.resource_type == link.source_type,
            X.param == link.param.name,
            X.target_id.in_(chunk),
            X.target_type == target_type,
        )
        for row in conn.execute(stmt):
            yield row.resource_id
