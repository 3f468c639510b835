"""Bulk Data Access 2.0 `$export`: kick-off, status polling, manifest, file download and cancellation.

System `/fhir/$export`, `/fhir/Patient/$export` and `/fhir/Group/<id>/$export` (GET, or POST with a
Parameters body) answer 202 with the status URL in Content-Location; the files are written in the
background (`export_runner.py`). transactionTime is taken under the serialized-writer lock, so every
version stored by then is in this export and every later one is after it (the `_since` of the next
one). Status, files and cancellation belong to the client that started the export: for any other
client they are absent (404). A Group-restricted client may export only its Group; its system and
Patient exports contain only its Group's patients (the compartment rule of every read path).
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import orjson
from flask import Blueprint, Response, current_app, request, send_file

from integration.audit import audit
from integration.auth.smart import current_grant, require_scope
from integration.fhir_api.capability import SERVED_TYPES
from integration.fhir_api.compartment import patient_scope
from integration.fhir_api.export_params import ExportParamError, parameters_pairs, parse_export_params
from integration.fhir_api.export_runner import attempt_directory, job_directory, runner
from integration.fhir_api.outcomes import answer_errors_as_outcomes
from integration.http_errors import ApiError
from integration.settings import Settings
from integration.store.exports import ExportJob, ExportJobRepository
from integration.store.resources import ResourceRepository
from integration.strict_params import is_fhir_id

bp = Blueprint("fhir_bulk", __name__, url_prefix="/fhir")
RETRY_AFTER_SECONDS = 2
_STATUS_PATH = "/fhir/bulk"
_NDJSON = "application/fhir+ndjson"
_KICKOFF_ACCEPT = ["application/fhir+json", "application/json"]
_JOB_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # secrets.token_urlsafe


class BulkError(ApiError):
    """A Bulk Data request that cannot be served as asked."""


answer_errors_as_outcomes(bp)


@bp.route("/$export", methods=["GET", "POST"])
def export_system() -> Response:
    return _kickoff("system", None)


@bp.route("/Patient/$export", methods=["GET", "POST"])
def export_patients() -> Response:
    return _kickoff("patient", None)


@bp.route("/Group/<group_id>/$export", methods=["GET", "POST"])
def export_group(group_id: str) -> Response:
    return _kickoff("group", group_id)


@bp.get("/bulk/<job_id>")
def status(job_id: str) -> Response:
    current_grant()  # first: the audit row names the client, refused ones included
    entry = audit("fhir.export.status", entity=f"export/{job_id[:64]}")
    job = _own_job(job_id)
    entry.detail = {"status": job.status}
    if job.status == "complete":
        return _manifest(job)
    if job.status == "failed":
        raise BulkError(500, "export-failed", job.error or "the export failed")
    if job.status == "queued" or (job.lease_until is not None and job.lease_until < datetime.now(UTC)):
        runner(current_app._get_current_object()).submit(job.id)  # type: ignore[attr-defined]
    response = Response(status=202)
    response.headers["X-Progress"] = (job.progress or job.status)[:99]
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@bp.delete("/bulk/<job_id>")
def cancel(job_id: str) -> Response:
    current_grant()  # first: the audit row names the client, refused ones included
    audit("fhir.export.cancel", entity=f"export/{job_id[:64]}")
    job = _own_job(job_id)
    with _db().writer() as conn:
        ExportJobRepository(conn).cancel(job.id, datetime.now(UTC))
    if job.status not in ("queued", "running"):  # a running worker removes its own files when it notices
        shutil.rmtree(job_directory(_settings(), job.id), ignore_errors=True)
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "export cancelled"}],
    }
    return Response(orjson.dumps(body), status=202, content_type="application/fhir+json")


@bp.get("/bulk/<job_id>/<name>")
def download(job_id: str, name: str) -> Response:
    current_grant()  # first: the audit row names the client, refused ones included
    entry = audit("fhir.export.download", entity=f"export/{job_id[:64]}")
    job = _own_job(job_id)
    if job.status != "complete":
        raise BulkError(404, "not-found", "no such export file")
    with _db().reader() as conn:
        files = {f.name: f for f in ExportJobRepository(conn).files(job.id)}
    found = files.get(name)
    if found is None:
        raise BulkError(404, "not-found", "no such export file")
    entry.detail = {"file": found.name, "count": found.count}
    path = attempt_directory(_settings(), job.id, job.worker) / found.name
    if not path.is_file():
        raise BulkError(404, "not-found", "the export file is no longer available")
    response = send_file(path.resolve(), mimetype=_NDJSON, conditional=False, etag=False, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


def _kickoff(kind: str, group_id: str | None) -> Response:
    grant = current_grant()
    entry = audit("fhir.export.kickoff", entity=f"Group/{group_id}" if group_id else kind)
    prefer = {p.strip().lower() for p in request.headers.get("Prefer", "").split(",")}
    if "respond-async" not in prefer:
        raise BulkError(400, "invalid", "$export runs asynchronously: send the header Prefer: respond-async")
    if request.headers.get("Accept") and not request.accept_mimetypes.best_match(_KICKOFF_ACCEPT):
        # export.md: the kick-off answers (OperationOutcome) come as application/fhir+json only.
        raise BulkError(400, "invalid", "send Accept: application/fhir+json with a $export kick-off")
    try:
        pairs = (
            parameters_pairs(request.get_json(silent=True))
            if request.method == "POST"
            else list(request.args.items(multi=True))
        )
        params = parse_export_params(pairs, SERVED_TYPES)
    except ExportParamError as exc:
        raise BulkError(400, "invalid", str(exc)) from None
    if params.types is not None:
        types = [t for t in params.types if require_scope(t, "read")]
    else:
        types = [t for t in SERVED_TYPES if grant.allows(t, "read")]
        if not types:
            require_scope("Patient", "read")  # refuses with 403, audited
    if group_id is not None:
        if not is_fhir_id(group_id):
            raise BulkError(404, "not-found", f"Group/{group_id[:64]!r} is not a FHIR id")
        with _db().reader() as conn:
            stored = ResourceRepository(conn).read("Group", group_id)
            visible = patient_scope(conn, grant).allows("Group", group_id, None)
        if stored is None or stored.deleted or not visible:
            raise BulkError(404, "not-found", f"Group/{group_id[:64]} is not known")
    job_id = secrets.token_urlsafe(24)
    settings = _settings()
    now = datetime.now(UTC)
    with _db().serialized_writer() as conn:
        repo = ExportJobRepository(conn)
        if repo.active_for(grant.client_id) is not None:
            raise BulkError(
                429,
                "throttled",
                "an export of this client is still running; wait for it or cancel it",
                {"Retry-After": str(RETRY_AFTER_SECONDS * 5)},
            )
        transaction_time = _millis(datetime.now(UTC))
        repo.create(
            id=job_id,
            client_id=grant.client_id,
            kind=kind,
            group_id=group_id,
            scope_group_id=grant.group_id,
            types=",".join(types),
            since=params.since,
            output_format=params.output_format,
            request_url=_public(settings, request.full_path.rstrip("?")),
            transaction_time=transaction_time,
            seq_high=repo.change_feed_high(),
            created_at=now,
            updated_at=now,
        )
        _wait_past(transaction_time)
    runner(current_app._get_current_object()).submit(job_id)  # type: ignore[attr-defined]
    entry.detail = {"job": job_id, "kind": kind, "types": len(types), "since": bool(params.since)}
    response = Response(status=202)
    response.headers["Content-Location"] = _public(settings, f"{_STATUS_PATH}/{job_id}")
    return response


def _manifest(job: ExportJob) -> Response:
    settings = _settings()
    if job.expires_at is not None and job.expires_at <= datetime.now(UTC):
        raise BulkError(404, "not-found", "this export has expired; start a new one")
    with _db().reader() as conn:
        files = ExportJobRepository(conn).files(job.id)
    base = _public(settings, f"{_STATUS_PATH}/{job.id}")

    def listed(kind: str) -> list[dict[str, object]]:
        return [
            {"type": f.resource_type, "url": f"{base}/{f.name}", "count": f.count}
            for f in files
            if f.kind == kind
        ]

    manifest: dict[str, object] = {
        "transactionTime": job.transaction_time.isoformat(timespec="milliseconds"),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": listed("output"),
        "error": listed("error"),
    }
    deleted = listed("deleted")
    if deleted:
        manifest["deleted"] = deleted
    response = Response(orjson.dumps(manifest), status=200, content_type="application/json")
    if job.expires_at is not None:
        response.headers["Expires"] = format_datetime(job.expires_at, usegmt=True)
    return response


def _own_job(job_id: str) -> ExportJob:
    """The caller's job; another client's, a cancelled or an unknown one is absent alike."""
    grant = current_grant()
    if _JOB_ID.fullmatch(job_id) is None:  # not one we issued: absent, before any SQL
        raise BulkError(404, "not-found", "no such export")
    with _db().reader() as conn:
        job = ExportJobRepository(conn).get(job_id)
    if job is None or job.client_id != grant.client_id or job.status == "cancelled":
        raise BulkError(404, "not-found", "no such export")
    if job.status == "complete" and job.expires_at is not None and job.expires_at <= datetime.now(UTC):
        raise BulkError(404, "not-found", "this export has expired; start a new one")
    return job


def _wait_past(moment: datetime) -> None:
    """Hold the writer lock until the clock has left `moment`'s millisecond: later writes are after it."""
    while _millis(datetime.now(UTC)) <= moment:
        time.sleep(0.0005)


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _public(settings: Settings, path: str) -> str:
    return settings.public_base_url.rstrip("/") + path


def _db():  # noqa: ANN202
    return current_app.extensions["horizon.db"]


def _settings() -> Settings:
    return current_app.config["HORIZON_SETTINGS"]
