"""`GET /fhir/Patient/<id>/$everything`: one patient's compartment as a paged searchset, from stored bytes.

FHIR R4 Patient-everything with `_since`, `_type` and `_count`. Besides the compartment, the
server "returns whatever resources are needed to support the records - e.g. linked practitioners,
medications, locations, organizations" (R4 operation-patient-everything): resources in no patient
compartment that a compartment resource references through an indexed reference parameter
(search_params.json), each once, as `search.mode = include` entries (Bundle.total counts only the
matches). Never another patient's resources. Both kinds form one stream in (type, id) order, paged
by a keyset cursor (`_after`, the last type and id of the previous page), so a `next` link never
repeats or skips what was there when the first page was read, however much is added meanwhile.
Types the token's scopes do not cover are left out, as referencing and as referenced resources
(named explicitly in `_type`, they are refused with 403); `_type` and `_since` apply to referenced
resources too. A patient outside the client's Group is absent (404), the same as an unknown id.
Audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import orjson
from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import ColumnElement, Connection, Subquery, and_, func, or_, select, union_all
from werkzeug.datastructures import MultiDict

from integration.audit import audit
from integration.auth.smart import require_scope
from integration.fhir_api import routes
from integration.fhir_api.capability import SERVED_TYPES
from integration.fhir_api.compartment import PatientScope, patient_scope
from integration.fhir_api.export_params import ExportParamError, parse_instant
from integration.fhir_api.outcomes import answer_errors_as_outcomes, render
from integration.fhir_api.search_sql import Selective, visible
from integration.http_errors import ApiError
from integration.store.resources import ResourceRepository
from integration.store.schema import fhir_resource, fhir_search_reference
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
    # What the client may read of the compartment decides what it references: a Practitioner
    # named only by an Observation is not revealed to a client without Observation scope.
    readable = [t for t in SERVED_TYPES if grant.allows(t, "read")]
    with current_app.extensions["horizon.db"].reader() as conn:
        patient = ResourceRepository(conn).read("Patient", patient_id)
        present = patient is not None and not patient.deleted
        scope = patient_scope(conn, grant)
        if not present or not scope.allows_patient(patient_id):
            raise EverythingError(404, "not-found", f"Patient/{patient_id[:64]} is not known")
        total, rows = _page(conn, _Request(patient_id, wanted, readable, since, scope), count, after)
    entry.patient_id = patient_id
    base = current_app.config["HORIZON_SETTINGS"].public_base_url.rstrip("/") + "/fhir"
    links = [{"relation": "self", "url": _url(base, patient_id, request.args, None)}]
    if len(rows) > count:
        rows = rows[:count]
        links.append(
            {"relation": "next", "url": _url(base, patient_id, request.args, f"{rows[-1][0]}/{rows[-1][1]}")}
        )
    included = sum(1 for row in rows if row[3] != patient_id)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{t}/{i}",
                "resource": orjson.Fragment(content),
                "search": {"mode": "match" if owner == patient_id else "include"},
            }
            for t, i, content, owner in rows
        ],
    }
    entry.detail = {"matches": len(rows) - included, "included": included}
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


@dataclass(frozen=True, slots=True)
class _Request:
    """Whose compartment, which types to answer, which types the client may read, since when."""

    patient_id: str
    wanted: list[str]
    readable: list[str]
    since: datetime | None
    scope: PatientScope


def _page(
    conn: Connection, req: _Request, count: int, after: tuple[str, str] | None
) -> tuple[int, list[tuple[str, str, str, str | None]]]:
    """(total matches, up to count + 1 (type, id, content, patient_id) rows after the cursor).

    One (type, id) order over both arms: they are disjoint (this patient's rows, rows of no
    patient), so the cursor of the last row sent decides both, and each row is sent once.
    """
    t = fhir_resource.c
    common: list[ColumnElement[bool]] = [t.deleted.is_(False), t.resource_type.in_(req.wanted)]
    if req.since is not None:
        common.append(t.last_updated > req.since)
    keys = _referenced_keys(req)
    compartment = [t.patient_id == req.patient_id, *common]
    referenced = [t.patient_id.is_(None), visible(req.scope), *common]
    total = conn.execute(select(func.count()).select_from(fhir_resource).where(*compartment)).scalar_one()
    if after is not None:
        later = or_(t.resource_type > after[0], and_(t.resource_type == after[0], t.id > after[1]))
        compartment.append(later)
        referenced.append(later)
    columns = (t.resource_type, t.id, t.content, t.patient_id)
    own = select(*columns).where(*compartment).order_by(t.resource_type, t.id).limit(count + 1)
    # Driven by the few referenced keys, each read by primary key, whatever the store holds.
    linked = (
        select(*columns)
        .select_from(
            keys.join(fhir_resource, and_(t.resource_type == keys.c.target_type, t.id == keys.c.target_id))
        )
        .where(*referenced)
        .order_by(t.resource_type, t.id)
        .limit(count + 1)
    )
    both = union_all(own.subquery().select(), linked.subquery().select()).subquery()
    rows = conn.execute(select(both).order_by(both.c.resource_type, both.c.id).limit(count + 1))
    return total, [(r.resource_type, r.id, r.content, r.patient_id) for r in rows]


def _referenced_keys(req: _Request) -> Subquery:
    """Distinct (target_type, target_id) the patient's readable resources reference (reference index),
    read through the index on the referencing resource, so the cost follows the compartment's size."""
    x = fhir_search_reference.c
    source = fhir_resource.alias("source")
    s = source.c
    return (
        select(x.target_type, x.target_id)
        .select_from(
            source.join(
                fhir_search_reference,
                and_(x.resource_type == s.resource_type, Selective(x.resource_id == s.id)),
            )
        )
        .where(
            s.patient_id == req.patient_id,
            s.deleted.is_(False),
            s.resource_type.in_(req.readable),
            x.target_type.is_not(None),
        )
        .distinct()
        .subquery("referenced")
    )


def _url(base: str, patient_id: str, args: MultiDict[str, str], next_after: str | None) -> str:
    """The self link (next_after None: the request's own parameters) or the next page's link."""
    names = ("_since", "_type", "_count", "_format") + (() if next_after else ("_after",))
    kept = [(k, v) for k, v in args.items(multi=True) if k in names]
    if next_after is not None:
        kept.append(("_after", next_after))
    query = urlencode(kept)
    return f"{base}/Patient/{patient_id}/$everything" + (f"?{query}" if query else "")
