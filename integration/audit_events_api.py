"""`GET /admin/api/audit-events`: the audit log for admins, as a FHIR Bundle of AuditEvents.

Newest first, filtered by patient, action and time, paged by a `_before` cursor (a row key), so a
page never shifts while new accesses are logged. Reading the log is itself logged ("Audit Log Used").
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, current_app, request

from integration.audit import audit
from integration.auth.admin_session import require_admin
from integration.http_errors import ApiError
from integration.store.audit import AuditRepository
from integration.strict_params import utc_in_range, whole_number
from mappings.audit_event import to_audit_event

bp = Blueprint("audit_events", __name__, url_prefix="/admin/api/audit-events")
bp.before_request(require_admin())

DEFAULT_COUNT = 100
MAX_COUNT = 1000
_PARAMS = frozenset({"patient", "action", "_since", "_count", "_before"})


@bp.get("")
def list_events() -> Response:
    entry = audit("audit.read")
    unknown = sorted(set(request.args) - _PARAMS)
    if unknown:
        raise ApiError(
            400, "unknown-parameter", f"unknown parameter {unknown[0][:40]!r}; use {sorted(_PARAMS)}"
        )
    count = _int("_count", DEFAULT_COUNT, 1, MAX_COUNT)
    before = _int("_before", None, 1, None)
    patient = request.args.get("patient") or None
    if patient is not None:
        patient = patient.removeprefix("Patient/")
        entry.patient_id = patient
    since = _since()
    with current_app.extensions["horizon.db"].reader() as conn:
        rows = AuditRepository(conn).page(
            limit=count + 1, before=before, patient_id=patient, action=request.args.get("action"), since=since
        )
    ctx = current_app.extensions["horizon.mapping"]
    links = [{"relation": "self", "url": _url({**request.args})}]
    if len(rows) > count:
        links.append({"relation": "next", "url": _url({**request.args, "_before": rows[count - 1]["pk"]})})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {"resource": to_audit_event(row, ctx), "search": {"mode": "match"}} for row in rows[:count]
        ],
    }
    return Response(orjson.dumps(bundle), mimetype="application/fhir+json")


def _url(args: dict[str, object]) -> str:
    """A link on the configured public base URL, never the request's Host header (it is the client's)."""
    base = current_app.config["HORIZON_SETTINGS"].public_base_url.rstrip("/") + bp.url_prefix
    query = urlencode(sorted((k, str(v)) for k, v in args.items()))
    return f"{base}?{query}" if query else base


def _int(name: str, default: int | None, low: int, high: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ApiError(400, "invalid-parameter", f"{name} must be an integer in {bounds}")
    return value


def _since() -> datetime | None:
    raw = request.args.get("_since")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or utc_in_range(moment) is None:
        raise ApiError(400, "invalid-parameter", "_since must be an ISO 8601 instant with a UTC offset")
    return moment
