"""The admin dashboard: server-rendered pages over the same functions the admin JSON API calls.

Overview of destinations (pause/resume, trigger a sync), a run page that refreshes itself while the run
runs, dead letters with Retry, the summary preview and the audit log. Every page needs a live admin
session; every form posts a CSRF token (checked by the gate below); every view and action is audited
with the actor, and with the patient where one is concerned.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, request, url_for

from integration.admin import dead_letters, destinations, syncs
from integration.admin.web import error_page, page, protect
from integration.audit import audit
from integration.auth import admin_session
from integration.http_errors import ApiError
from integration.store.audit import AuditRepository
from integration.store.resources import ResourceRepository
from integration.summaries.api import FRAMED_HTML_POLICY, render_preview
from integration.summaries.render import FORMATS
from integration.sync import service
from mappings.ids import resource_id

bp = Blueprint(
    "admin_ui",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
PAGE_SIZE = 50
_RETRY_NOTICES = {"requeued": "put back in the outbox", "unchanged": "was not dead any more; nothing changed"}


@bp.before_request
def _gate() -> Response | None:
    """A live session for every page (else to the login form); a valid CSRF token for every POST."""
    if request.endpoint == "admin_ui.static":
        return None
    session, reason = admin_session.current()
    if session is None:
        audit("auth.refused", detail={"reason": reason, "via": "session"})
        response = redirect(url_for("admin_login.login_form"), 303)
        if reason != "no-session":
            admin_session.clear_cookie(response, current_app.config["HORIZON_SETTINGS"])
        return response
    refusal = admin_session.csrf_refusal()
    if refusal is not None:
        audit("auth.refused", detail={"reason": refusal, "via": "session"})
        return error_page(403, "Refused: this form did not come from this dashboard (or it expired).")
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    return protect(response)


def _deliverable() -> list[str]:
    return [d.name for d in service.configured(current_app).values() if d.delivers or d.pulls]


# --- overview, pause/resume, trigger ------------------------------------------------------------


@bp.get("/")
def overview() -> Response:
    audit("dashboard.overview")
    return _overview()


def _overview(status: int = 200, error: str | None = None) -> Response:
    return page(
        "overview.html", status, destinations=destinations.overview(), targets=_deliverable(), error=error
    )


@bp.post("/destinations/capabilities")
def refresh_capabilities() -> Response:
    """Re-read every delivering destination's CapabilityStatement (outbound calls: a POST, not a GET)."""
    audit("sync.capabilities.refresh")
    destinations.overview(refresh_capabilities=True)
    return redirect(url_for("admin_ui.overview"), 303)


@bp.post("/destinations/<name>/pause")
def pause(name: str) -> Response:
    return _set_paused(name, True)


@bp.post("/destinations/<name>/resume")
def resume(name: str) -> Response:
    return _set_paused(name, False)


def _set_paused(name: str, paused: bool) -> Response:
    audit("sync.pause" if paused else "sync.resume", entity=f"Destination/{name[:64]}")
    try:
        destinations.set_paused(name, paused)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    return redirect(url_for("admin_ui.overview"), 303)


@bp.post("/syncs")
def trigger() -> Response:
    entry = audit("sync.trigger")
    form = request.form
    body: dict[str, Any] = {
        key: True for key in ("full", "dry_run", "pull") if form.get(key) in ("on", "true", "1")
    }
    for key in ("destination", "patient"):
        value = form.get(key, "").strip()
        if value:
            body[key] = value[:200]
    try:
        out, _status = syncs.start(body, entry)
    except ApiError as exc:
        return _overview(exc.status, exc.message)
    if out.get("dry_run"):
        return page("dry_run.html", previews=out["destinations"], patient=body.get("patient"))
    runs, skipped = out["runs"], out.get("skipped", [])
    if len(runs) == 1 and not skipped:
        return redirect(url_for("admin_ui.run", run_id=runs[0]["run_id"]), 303)
    return page("runs.html", runs=runs, skipped=skipped)


@bp.get("/syncs/<run_id>")
def run(run_id: str) -> Response:
    audit("sync.read", entity=f"SyncRun/{run_id[:64]}")
    try:
        view = syncs.run_view(run_id)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    return page("run.html", run=view, running=view["state"] == "running")


# --- dead letters ----------------------------------------------------------------------------------


@bp.get("/dead-letters")
def dead_letter_list() -> Response:
    audit("sync.dead-letters.read")
    name = request.args.get("destination") or None
    before = _positive(request.args.get("before"))
    try:
        if name:
            destinations.destination(name)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    rows, next_before = dead_letters.page(name, PAGE_SIZE, before)
    retried = _positive(request.args.get("retried"))
    notice = _RETRY_NOTICES.get(request.args.get("outcome", "")) if retried else None
    return page(
        "dead_letters.html",
        rows=rows,
        destination=name,
        next_before=next_before,
        notice=f"Dead letter {retried} {notice}." if notice else None,
    )


@bp.post("/dead-letters/<int:pk>/retry")
def retry(pk: int) -> Response:
    entry = audit("sync.dead-letter.retry", entity=f"SyncOutbox/{pk}")
    try:
        out, _status = dead_letters.requeue(pk, entry)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    if out.get("run_id"):
        return redirect(url_for("admin_ui.run", run_id=out["run_id"]), 303)
    outcome = "requeued" if out["requeued"] else "unchanged"
    return redirect(url_for("admin_ui.dead_letter_list", retried=pk, outcome=outcome), 303)


# --- summary preview ---------------------------------------------------------------------------


def _patient_id(given: str) -> str:
    """The FHIR Patient id an admin means: `Patient/<id>`, a stored Patient id, or a clinic MRN."""
    if given.startswith("Patient/") or not given:
        return given.removeprefix("Patient/")
    with current_app.extensions["horizon.db"].reader() as conn:
        if ResourceRepository(conn).states([("Patient", given)]):
            return given
    return resource_id("patient", given)


@bp.get("/summaries")
def summary() -> Response:
    given = request.args.get("patient", "").strip()[:128]
    patient = _patient_id(given)
    fmt = request.args.get("format", "html")
    if fmt not in FORMATS:
        fmt = "html"
    audit("dashboard.summary", patient_id=patient or None, detail={"format": fmt})
    return page("summary.html", given=given, patient=patient, format=fmt, formats=list(FORMATS))


@bp.get("/summaries/frame")
def summary_frame() -> Response:
    """The HTML summary, for the preview page's sandboxed iframe (same origin only)."""
    patient = request.args.get("patient", "").strip()[:128]
    audit("summary.preview", patient_id=patient or None, detail={"format": "html", "via": "dashboard"})
    response = render_preview(patient, "html", FRAMED_HTML_POLICY)
    if response.status_code != 200:
        message = "No such patient in the store." if response.status_code == 404 else "Bad request."
        response = page("frame_error.html", response.status_code, message=message)
        response.headers["Content-Security-Policy"] = FRAMED_HTML_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


# --- audit log ---------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> Response:
    patient = request.args.get("patient", "").strip().removeprefix("Patient/")[:128] or None
    action = request.args.get("action", "").strip()[:64] or None
    before = _positive(request.args.get("before"))
    audit("audit.read", patient_id=patient, detail={"via": "dashboard"})
    with current_app.extensions["horizon.db"].reader() as conn:
        rows = AuditRepository(conn).page(
            limit=PAGE_SIZE + 1, before=before, patient_id=patient, action=action
        )
    next_before = rows[PAGE_SIZE - 1]["pk"] if len(rows) > PAGE_SIZE else None
    return page("audit.html", rows=rows[:PAGE_SIZE], patient=patient, action=action, next_before=next_before)


def _positive(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 2**62 else None
