"""`GET /fhir/Patient/<id>/$everything`: one patient's compartment as a paged searchset, from stored bytes.

FHIR R4 Patient-everything with `_since`, `_type` and `_count`. Pages follow a keyset cursor
(`_after`, the last resource type and id of the previous page), so a `next` link never repeats or
skips what was there when the first page was read, however much is added meanwhile. Types the
token's scopes do not cover are left out (named explicitly in `_type`, they are refused with 403).
A patient outside the client's Group is absent (404), the same as an unknown id. Audited.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import Connection, and_, func, or_, select
from werkzeug.datastructures import MultiDict

from integration.audit import audit
from integration.auth.smart import require_scope
from integration.fhir_api import routes
from integration.fhir_api.capability import SERVED_TYPES
from integration.fhir_api.compartment import patient_scope
from integration.fhir_api.export_params import ExportParamError, parse_instant
from integration.fhir_api.outcomes import answer_errors_as_outcomes, render
from integration.http_errors import ApiError
from integration.store.resources import ResourceRepository
from integration.store.schema import fhir_resource
from integration.strict_params import is_fhir_id, whole_number

bp = Blueprint("fhir_everything", __name__, url_prefix="/fhir")
# The same content negotiation and OperationOutcome errors as the rest of the FHIR API.
bp.before_request(routes._negotiate)
answer_errors_as_outcomes(bp)

DEFAULT_COUNT = 100
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
MAX_COUNT = 1000


class EverythingError(ApiError):
    """A $everything request that cannot be answered as asked."""


@bp.get("/Patient/<patient_id>/$everything")
def everything(patient_id: str) -> Response:
    grant = require_scope("Patient", "read")
    entry = audit("fhir.everything", entity=f"Patient/{patient_id[:64]}")
    if not is_fhir_id(patient_id):
        raise EverythingError(404, "not-found", f"Patient/{patient_id[:64]!r} is not a FHIR id")
    since, types, count, after = _params()
    for t in types or ():
        require_scope(t, "read")
    wanted = [t for t in (types or SERVED_TYPES) if grant.allows(t, "read")]
    with current_app.extensions["horizon.db"].reader() as conn:
        patient = ResourceRepository(conn).read("Patient", patient_id)
        visible = patient is not None and not patient.deleted
        if not visible or not patient_scope(conn, grant).allows_patient(patient_id):
            raise EverythingError(404, "not-found", f"Patient/{patient_id[:64]} is not known")
        total, rows = _page(conn, patient_id, wanted, since, count, after)
    entry.patient_id = patient_id
    base = current_app.config["HORIZON_SETTINGS"].public_base_url.rstrip("/") + "/fhir"
    links = [{"relation": "self", "url": _url(base, patient_id, request.args, None)}]
    if len(rows) > count:
        rows = rows[:count]
        links.append(
            {"relation": "next", "url": _url(base, patient_id, request.args, f"{rows[-1][0]}/{rows[-1][1]}")}
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{t}/{i}", "resource": orjson.Fragment(content), "search": {"mode": "match"}}
            for t, i, content in rows
        ],
    }
    return render(orjson.dumps(bundle), g.fhir_format)


def _params() -> tuple[datetime | None, list[str] | None, int, tuple[str, str] | None]:
    args = request.args
    try:
        since = parse_instant(args["_since"]) if "_since" in args else None
    except ExportParamError as exc:
        raise EverythingError(400, "invalid", str(exc)) from None
    types = None
    if "_type" in args:
        types = [t.strip() for value in args.getlist("_type") for t in value.split(",") if t.strip()]
        unknown = [t for t in types if t not in SERVED_TYPES]
        if unknown or not types:
            raise EverythingError(400, "invalid", f"_type names no resource type served here: {unknown[:1]}")
    count = whole_number(args.get("_count", str(DEFAULT_COUNT)))
    if count is None or not 1 <= count <= MAX_COUNT:
        raise EverythingError(400, "invalid", f"_count must be a whole number from 1 to {MAX_COUNT}")
    after = None
    if "_after" in args:
        resource_type, _, resource_id = args["_after"].partition("/")
        if not _TYPE.fullmatch(resource_type) or not is_fhir_id(resource_id):
            raise EverythingError(400, "invalid", "_after must be the Type/id a next link gave")
        after = (resource_type, resource_id)
    return since, types, count, after


def _page(
    conn: Connection,
    patient_id: str,
    types: list[str],
    since: datetime | None,
    count: int,
    after: tuple[str, str] | None,
) -> tuple[int, list[tuple[str, str, str]]]:
    """(total matches, up to count + 1 rows after the cursor in (type, id) order)."""
    t = fhir_resource.c
    where = [t.patient_id == patient_id, t.deleted.is_(False), t.resource_type.in_(types)]
    if since is not None:
        where.append(t.last_updated > since)
    total = conn.execute(select(func.count()).select_from(fhir_resource).where(*where)).scalar_one()
    if after is not None:
        where.append(or_(t.resource_type > after[0], and_(t.resource_type == after[0], t.id > after[1])))
    rows = conn.execute(
        select(t.resource_type, t.id, t.content)
        .where(*where)
        .order_by(t.resource_type, t.id)
        .limit(count + 1)
    )
    return total, [(r.resource_type, r.id, r.content) for r in rows]


def _url(base: str, patient_id: str, args: MultiDict[str, str], next_after: str | None) -> str:
    """The self link (next_after None: the request's own parameters) or the next page's link."""
    names = ("_since", "_type", "_count", "_format") + (() if next_after else ("_after",))
    kept = [(k, v) for k, v in args.items(multi=True) if k in names]
    if next_after is not None:
        kept.append(("_after", next_after))
    query = urlencode(kept)
    return f"{base}/Patient/{patient_id}/$everything" + (f"?{query}" if query else "")
