"""Type-level and system-level history (R4 3.1.0.4): every version written, newest first.

Read from the change feed, whose sequence numbers give stable keyset pages (a `next` link continues
below the last sequence number it saw, whatever is written meanwhile) and whose `patient_id` lets
the compartment rule run in SQL. `_since` keeps versions written at or after an instant.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from flask import Response, current_app
from sqlalchemy import and_, select

from integration.audit import audit
from integration.auth.smart_clients import Grant
from integration.fhir_api.compartment import patient_scope
from integration.fhir_api.outcomes import render
from integration.fhir_api.search_api import fhir_base
from integration.fhir_api.search_query import DEFAULT_COUNT, MAX_COUNT, SearchError
from integration.fhir_api.search_sql import visible
from integration.store.schema import change_feed
from integration.store.schema import fhir_resource_version as versions
from integration.store.search_extract import date_range
from integration.strict_params import whole_number

C = change_feed.c
V = versions.c
MAX_AUDITED_PATIENTS = 100


def history(
    types: list[str], grant: Grant, pairs: list[tuple[str, str]], fmt: str, *, system: bool = False
) -> Response:
    """History of one type, or of the whole system limited to `types`; raises SearchError."""
    resource_type = None if system else types[0]
    since, count, before, canonical = _parse(pairs)
    entry = audit(
        "fhir.history", entity=resource_type or "*", detail={"parameters": [n for n, _ in canonical]}
    )
    stmt = (
        select(
            C.seq,
            C.resource_type,
            C.resource_id,
            C.version_id,
            C.deleted,
            C.patient_id,
            V.content,
            V.last_updated,
        )
        .join(
            versions,
            and_(V.resource_type == C.resource_type, V.id == C.resource_id, V.version_id == C.version_id),
        )
        .order_by(C.seq.desc())
        .limit(count + 1)
    )
    stmt = (
        stmt.where(C.resource_type == resource_type)
        if resource_type
        else stmt.where(C.resource_type.in_(types))
    )
    if since is not None:
        stmt = stmt.where(C.recorded_at >= since)
    if before is not None:
        stmt = stmt.where(C.seq < before)
    with current_app.extensions["horizon.db"].reader() as conn:
        stmt = stmt.where(visible(patient_scope(conn, grant), C))
        rows = conn.execute(stmt).all()
    more = len(rows) > count
    rows = rows[:count]
    base = fhir_base()
    url = f"{base}/{resource_type}/_history" if resource_type else f"{base}/_history"
    self_params = [*canonical, *([("_cursor", str(before))] if before is not None else [])]
    links = [{"relation": "self", "url": _url(url, self_params)}]
    if more:
        links.append({"relation": "next", "url": _url(url, [*canonical, ("_cursor", str(rows[-1].seq))])})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if not more and before is None:
        bundle["total"] = len(rows)
    bundle["link"] = links
    if rows:
        bundle["entry"] = [_entry(base, r) for r in rows]
    patients = sorted({r.patient_id for r in rows} - {None})
    entry.detail.update(versions=len(rows), patients=patients[:MAX_AUDITED_PATIENTS])
    if len(patients) == 1:
        entry.patient_id = patients[0]
    return render(bundle, fmt)


def _parse(pairs: list[tuple[str, str]]) -> tuple[Any, int, int | None, list[tuple[str, str]]]:
    since = None
    count = DEFAULT_COUNT
    before = None
    canonical: list[tuple[str, str]] = []
    for name, value in pairs:
        if name == "_since":
            found = date_range(value)
            if found is None:
                raise SearchError(f"_since: {value[:40]!r} is not a FHIR instant")
            since = found[0]
        elif name == "_count":
            wanted = whole_number(value)
            if not wanted:
                raise SearchError(f"_count must be a positive whole number, not {value[:20]!r}")
            count = min(wanted, MAX_COUNT)
        elif name == "_cursor":
            before = whole_number(value)
            if before is None:
                raise SearchError("_cursor is not a cursor this server issued")
            continue
        else:
            continue  # _format and anything else: not part of history
        canonical.append((name, value))
    return since, count, before, canonical


def _url(url: str, params: list[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(params)}" if params else url


def history_entry(
    base: str,
    resource_type: str,
    resource_id: str,
    version_id: int,
    deleted: bool,
    content: str | None,
    last_updated: Any,
) -> dict[str, Any]:
    """One Bundle.entry of a history: the version's stored bytes, or a DELETE for a deletion."""
    if deleted:
        return {
            "fullUrl": f"{base}/{resource_type}/{resource_id}",
            "request": {"method": "DELETE", "url": f"{resource_type}/{resource_id}"},
            "response": {"status": "410 Gone", "lastModified": last_updated.isoformat()},
        }
    return {
        "fullUrl": f"{base}/{resource_type}/{resource_id}",
        "resource": orjson.Fragment(content or "{}"),
        "request": {"method": "POST" if version_id == 1 else "PUT", "url": f"{resource_type}/{resource_id}"},
        "response": {
            "status": "201 Created" if version_id == 1 else "200 OK",
            "etag": f'W/"{version_id}"',
            "lastModified": last_updated.isoformat(),
        },
    }


def _entry(base: str, r: Any) -> dict[str, Any]:
    return history_entry(
        base, r.resource_type, r.resource_id, r.version_id, r.deleted, r.content, r.last_updated
    )
