"""Admin trigger of summary delivery: POST /admin/api/summaries {patient?, referrer?, dry_run?}.

Judges every trigger over the patient's whole record (not only recent changes), records what is due and
prepares it, answering with each prepared version (ids, content hashes, reasons, the version it
supersedes) and each due row that produced nothing (and why). `dry_run` computes the same versions and
returns them without recording anything. Admin token only; audited with the patient id, like the preview.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from integration.audit import audit
from integration.auth.admin_session import require_admin
from integration.summaries.api import outcome
from integration.summaries.delivery_loader import documented_referrers, load_state, referred_patients
from integration.summaries.jobs import configured_referrers, preparer_for
from integration.summaries.ledger import NewVersion, SummaryLedger
from integration.summaries.triggers import Due, due_summaries

bp = Blueprint("summaries_delivery_admin", __name__, url_prefix="/admin/api/summaries")
bp.before_request(require_admin())
_KEYS = {"patient", "referrer", "dry_run"}


def _unsaved(due: Due, v: NewVersion) -> dict[str, Any]:
    return {
        "patient": due.patient_id,
        "referrer": due.referrer,
        "reasons": list(v.reasons),
        "set_id": v.set_id,
        "version": v.version,
        "period": {
            "start": v.period_start.isoformat() if v.period_start else None,
            "end": v.period_end.isoformat() if v.period_end else None,
        },
        "content_hash": v.content_hash,
        "composition_id": v.document_id,
        "replaces": v.replaces_pk,
        "channel": v.channel,
    }


def _request() -> tuple[str | None, str | None, bool]:
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object: {patient?, referrer?, dry_run?}")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (allowed: patient, referrer, dry_run)")
    patient, referrer, dry_run = body.get("patient"), body.get("referrer"), body.get("dry_run", False)
    for name, value in (("patient", patient), ("referrer", referrer)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"field {name!r} must be a non-empty string")
    if not isinstance(dry_run, bool):
        raise ValueError("field 'dry_run' must be true or false")
    return patient, referrer, dry_run


@bp.post("")
def trigger() -> Response:
    try:
        patient, referrer, dry_run = _request()
    except ValueError as exc:
        audit("summary.prepare", detail={"error": "bad request"})
        return outcome(400, str(exc))
    audit("summary.prepare", patient_id=patient, detail={"referrer": referrer, "dry_run": dry_run})
    referrers = configured_referrers(current_app)
    if referrer is not None and referrer not in referrers:
        return outcome(400, f"referrer {referrer!r} is not a configured destination of kind referrer")
    selected = [referrers[referrer]] if referrer else list(referrers.values())
    db = current_app.extensions["horizon.db"]
    dues: list[Due] = []
    with db.reader() as conn:
        patients = [patient] if patient else referred_patients(conn)
        for patient_id in patients:
            state = load_state(conn, patient_id)
            if state is None:
                if patient:
                    return outcome(404, f"no Patient/{patient} in the store")
                continue
            dues.extend(due_summaries(state, selected, None, documented_referrers(conn, patient_id)))
    preparer = preparer_for(current_app)
    now = datetime.now(UTC)
    if dry_run:
        would = [
            _unsaved(due, v)
            for due in dues
            for v in preparer.versions(due.patient_id, referrers[due.referrer], due.reasons, now)[0]
        ]
        return jsonify({"dry_run": True, "prepared": would, "skipped": []})
    with db.writer() as conn:
        ledger = SummaryLedger(conn)
        pks = [ledger.add_due(d.patient_id, d.referrer, d.reasons, now) for d in dues]
    prepared: list[int] = []
    for pk in pks:
        with db.reader() as conn:
            entry = SummaryLedger(conn).get(pk)
        if entry is not None and entry.state == "due":
            prepared.extend(preparer.prepare(entry, now))
    with db.reader() as conn:
        ledger = SummaryLedger(conn)
        done = [ledger.get(pk) for pk in [*prepared, *pks]]
    seen: set[int] = set()
    answer: dict[str, list[dict[str, Any]]] = {"prepared": [], "skipped": []}
    for entry in done:
        if entry is None or entry.pk in seen:
            continue
        seen.add(entry.pk)
        if entry.state in ("prepared", "skipped"):
            answer[entry.state].append(entry.summary())
    return jsonify({"dry_run": False, **answer})
