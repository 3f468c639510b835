"""The clinic intake API under /api/v1: PUT/GET one record, POST a batch. JSON only."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, g, request

from integration.audit import audit, mark_written
from integration.auth.api_tokens import require_role
from integration.http_errors import ApiError
from integration.ingest.problems import RecordError
from integration.ingest.service import COLLECTIONS, Outcome, ingest
from integration.store.records import ClinicRecordRepository

bp = Blueprint("intake", __name__, url_prefix="/api/v1")
bp.before_request(require_role("clinic", "admin"))

_STATUS_OF_PUT = {"accepted": 200, "unchanged": 200, "rejected": 422}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _kind(collection: str) -> str:
    kind = COLLECTIONS.get(collection)
    if kind is None:
        raise ApiError(404, "not-found", f"no such collection; use one of {', '.join(COLLECTIONS)}")
    return kind


def _body() -> Any:
    """The parsed JSON body; 415 for another media type, 400 for malformed JSON."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported-media-type", "send the body as Content-Type: application/json")
    raw = request.get_data(cache=False)
    if not raw:
        raise ApiError(400, "empty-body", "the request body is empty; send a JSON document")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed-json", f"the body is not valid JSON: {exc}") from None


@bp.put("/<collection>/<record_id>")
def put_record(collection: str, record_id: str) -> Response:
    kind = _kind(collection)
    entry = audit("intake.put", entity=f"{kind}/{record_id}")
    record = _body()
    if isinstance(record, dict):
        if "id" not in record:
            record = {"id": record_id, **record}
        elif record["id"] != record_id:
            message = "the record's id differs from the id in the URL"
            mismatch = Outcome(
                kind, record_id, errors=[RecordError(kind, record_id, "id", "id-mismatch", message)]
            )
            return _json(mismatch.as_dict(), 422)
        entry.patient_id = patient_of_raw(kind, record)
    db = current_app.extensions["horizon.db"]
    [outcome] = ingest(
        db,
        [(kind, record)],
        ctx=current_app.extensions["horizon.mapping"],
        source="api",
        request_id=g.request_id,
        audit=entry,
        audit_outcome=lambda outcomes: _put_status(outcomes[0]),
    )
    mark_written()
    return _json(outcome.as_dict(), _put_status(outcome))


def _put_status(outcome: Outcome) -> int:
    if outcome.status == "accepted" and outcome.version == 1:
        return 201
    return _STATUS_OF_PUT[outcome.status]


@bp.get("/<collection>/<record_id>")
def get_record(collection: str, record_id: str) -> Response:
    kind = _kind(collection)
    entry = audit("intake.read", entity=f"{kind}/{record_id}")
    version = request.args.get("version", type=int)
    with current_app.extensions["horizon.db"].reader() as conn:
        stored = ClinicRecordRepository(conn).get(kind, record_id, version)
    if stored is None:
        raise ApiError(404, "not-found", f"no {kind} with that id" + (" and version" if version else ""))
    record = orjson.loads(stored.payload)
    entry.patient_id = patient_of_raw(kind, record)
    body = {
        "kind": stored.kind,
        "id": stored.clinic_id,
        "version": stored.version,
        "received_at": stored.received_at.isoformat(),
        "source": stored.source,
        "content_hash": stored.content_hash,
        "record": record,
    }
    return _json(body)


@bp.post("/batch")
def post_batch() -> Response:
    entry = audit("intake.batch")
    body = _body()
    if not isinstance(body, dict):
        raise ApiError(400, "invalid-batch", "the batch must be a JSON object of record lists")
    unknown = sorted(set(body) - set(COLLECTIONS))
    if unknown:
        raise ApiError(
            400, "invalid-batch", f"unknown batch keys {unknown}; allowed: {', '.join(COLLECTIONS)}"
        )
    pairs: list[tuple[str, object]] = []
    for collection, kind in COLLECTIONS.items():
        items = body.get(collection, [])
        if not isinstance(items, list):
            raise ApiError(400, "invalid-batch", f"{collection!r} must be a list of records")
        pairs.extend((kind, item) for item in items)
    limit = current_app.config["HORIZON_SETTINGS"].max_batch_records
    if len(pairs) > limit:
        raise ApiError(
            413, "batch-too-large", f"a batch holds at most {limit} records; this one has {len(pairs)}"
        )
    db = current_app.extensions["horizon.db"]
    ctx = current_app.extensions["horizon.mapping"]
    outcomes = ingest(
        db, pairs, ctx=ctx, source="api", request_id=g.request_id, audit=entry, audit_outcome=lambda _: 200
    )
    mark_written()
    results = [o.as_dict() for o in outcomes]
    summary = {s: sum(1 for o in outcomes if o.status == s) for s in ("accepted", "unchanged", "rejected")}
    return _json({"summary": summary, "results": results})


def patient_of_raw(kind: str, record: dict[str, Any]) -> str | None:
    """The clinic patient id a (possibly invalid) record names, for the audit log."""
    value = record.get("id") if kind == "patient" else record.get("patient_id")
    return value if isinstance(value, str) else None
