"""Admin preview of a patient's treatment summary: GET /admin/api/summaries/preview?patient=ID&format=...

Admin bearer token only; every preview, refused or not, is audited with the patient id. Errors are
OperationOutcome-shaped JSON (the summaries do not depend on the FHIR API package, so it is built here).
"""

from __future__ import annotations

from datetime import date

import orjson
from flask import Blueprint, Response, current_app, request

from integration.audit import audit
from integration.auth.admin_session import require_admin
from integration.summaries.model import Period
from integration.summaries.render import FORMATS
from integration.summaries.service import build

bp = Blueprint("summaries_admin", __name__, url_prefix="/admin/api/summaries")
bp.before_request(require_admin())

_ISSUE = {400: "invalid", 404: "not-found"}
# The HTML preview is self-contained: no scripts, no outside requests, images only from data: URIs.
_HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
# Shown inside the admin dashboard's preview page: framed by our own pages only, and sandboxed
# (no scripts, no forms, an opaque origin) even if a browser ignored the iframe's own sandbox.
FRAMED_HTML_POLICY = _HTML_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'; sandbox")


def outcome(status: int, diagnostics: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": _ISSUE[status], "diagnostics": diagnostics}],
    }
    return Response(orjson.dumps(body), status=status, mimetype="application/fhir+json")


def _day(name: str) -> date | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"parameter {name!r} must be a date (YYYY-MM-DD)") from None


@bp.get("/preview")
def preview() -> Response:
    patient_id = request.args.get("patient", "")
    fmt = request.args.get("format", "html")
    audit("summary.preview", patient_id=patient_id or None, detail={"format": fmt[:16]})
    return render_preview(patient_id, fmt)


def render_preview(patient_id: str, fmt: str, html_policy: str = _HTML_POLICY) -> Response:
    """The summary in one format (since/from/to read from the query), or an OperationOutcome 400/404."""
    if not patient_id:
        return outcome(400, "parameter 'patient' (a Patient id) is required")
    if fmt not in FORMATS:
        return outcome(400, f"parameter 'format' must be one of {', '.join(FORMATS)}")
    try:
        start, end = _day("since") or _day("from"), _day("to")
    except ValueError as exc:
        return outcome(400, str(exc))
    if start and end and end < start:
        return outcome(400, "parameter 'to' is before the start of the period")
    app = current_app
    built = build(
        app.extensions["horizon.db"],
        app.config["HORIZON_SETTINGS"],
        app.extensions["horizon.mapping"],
        patient_id,
        Period(start, end),
    )
    if built is None:
        return outcome(404, f"no Patient/{patient_id} in the store")
    spec = FORMATS[fmt]
    response = Response(spec.render(built), mimetype=spec.media_type.split(";")[0])
    response.headers["Content-Type"] = spec.media_type
    if fmt == "html":
        response.headers["Content-Security-Policy"] = html_policy
    if fmt == "pdf":
        response.headers["Content-Disposition"] = 'inline; filename="treatment-summary.pdf"'
    return response
