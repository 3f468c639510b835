"""`POST /admin/api/syncs` (trigger, or dry run) and `GET /admin/api/syncs/<run_id>` (watch), audited.

A trigger while the destination is already running answers that run (200), never a second one; a
new run answers 202 with its id and runs on a background thread. `patient` is a clinic patient id
(MRN) or `Patient/<FHIR id>`; `full` re-offers every current resource; `dry_run` answers what would be
sent, built and checked, and sends nothing. `pull: true` starts a pull instead (referrals and
demographics from destinations with a `[destination.pull]` table; `full` re-reads everything); a paused
destination or one whose circuit is open is not pulled from: 409 when it is the one named (or every
one is), else it is listed under `skipped` beside the runs started.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from integration.admin.common import answer, destination, json_body
from integration.audit import audit
from integration.auth.admin_session import require_admin
from integration.http_errors import ApiError
from integration.store.audit import AuditEntry
from integration.sync import pull_service, service
from integration.sync.pull_guard import pull_blocked
from integration.sync.runs import RunRepository
from integration.sync.state import StateRepository
from mappings.ids import resource_id

bp = Blueprint("admin_syncs", __name__, url_prefix="/admin/api/syncs")
bp.before_request(require_admin())

_FIELDS = {"destination": str, "patient": str, "full": bool, "dry_run": bool, "pull": bool}
_COUNTS = {"sent": 0, "unchanged": 0, "retrying": 0, "dead": 0}


def _patient(value: str | None) -> str | None:
    if not value:
        return None
    if value.startswith("Patient/"):
        return value.removeprefix("Patient/")
    return resource_id("patient", value)


def _view(run: dict) -> dict:
    if (run.get("options") or {}).get("pull"):
        return run  # a pull's counts are its own (stored, unchanged, skipped, rejected, ...)
    return {**run, "counts": {**_COUNTS, **run.get("counts", {})}}


@bp.post("")
def trigger() -> Response:
    entry = audit("sync.trigger")
    out, status = start(json_body(_FIELDS), entry)
    headers = {"Location": f"/admin/api/syncs/{out['runs'][0]['run_id']}"} if "runs" in out else None
    return answer(out, status, headers)


def start(body: dict[str, Any], entry: AuditEntry) -> tuple[dict[str, Any], int]:
    """Trigger (or dry-run, or pull) as the API and the dashboard do: (answer body, 202 | 200).

    Refusals raise ApiError (404 unknown destination, 409 paused or nothing to run, 400 bad fields).
    """
    entry.patient_id = body.get("patient")
    entry.detail = {k: v for k, v in body.items() if k != "patient"}
    app = current_app
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    if body.get("pull"):
        entry.action = "sync.pull.trigger"
        return _pull(body, entry.actor, entry)
    if body.get("destination"):
        targets = [destination(body["destination"])]
        if not targets[0].delivers:
            raise ApiError(409, "not-deliverable", "that destination is disabled or not an EHR destination")
    else:
        targets = [d for d in service.configured(app).values() if d.delivers]
        if not targets:
            raise ApiError(409, "no-destinations", "no enabled EHR destination is configured")
    patient = _patient(body.get("patient"))
    if body.get("dry_run"):
        entry.action = "sync.dry-run"
        previews = [service.dry_run(db, settings, d, patient) for d in targets]
        return {"dry_run": True, "destinations": previews}, 200
    options = {"patient": patient, "full": bool(body.get("full"))}
    with db.writer() as conn:  # all switches read before any run starts (get() creates a missing state row)
        states = StateRepository(conn)
        paused = [t.name for t in targets if states.get(t.name).paused]
    if paused and (body.get("destination") or len(paused) == len(targets)):
        raise ApiError(409, "paused", f"destination {paused[0]} is paused; resume it first")
    runs, created_any = [], False
    for target in (t for t in targets if t.name not in paused):
        run, created = service.run_in_background(db, settings, target, options, entry.actor)
        created_any = created_any or created
        runs.append({**_view(run), "created": created})
    entry.entity = ",".join(f"SyncRun/{r['run_id']}" for r in runs)[:200]
    body_out = {"run_id": runs[0]["run_id"], "runs": runs} if len(runs) == 1 else {"runs": runs}
    if paused:  # the others were started; these were not, and why
        why = "destination {} is paused; resume it first"
        body_out["skipped"] = [{"destination": name, "reason": why.format(name)} for name in paused]
    return body_out, 202 if created_any else 200


def _pull(body: dict, actor: str | None, entry: AuditEntry) -> tuple[dict[str, Any], int]:
    """Start a pull on each destination that pulls (or the one named)."""
    if body.get("patient") or body.get("dry_run"):
        raise ApiError(400, "invalid-field", "a pull takes only destination and full")
    app = current_app
    if body.get("destination"):
        targets = [destination(body["destination"])]
        if not targets[0].pulls:
            raise ApiError(
                409, "not-pullable", "that destination is disabled or has no [destination.pull] table"
            )
    else:
        targets = [d for d in service.configured(app).values() if d.pulls]
        if not targets:
            raise ApiError(409, "no-destinations", "no enabled destination pulls")
    db, settings, ctx = (
        app.extensions["horizon.db"],
        app.config["HORIZON_SETTINGS"],
        app.extensions["horizon.mapping"],
    )
    blocked = {d.name: why for d in targets if (why := pull_blocked(db, d)) is not None}
    if blocked and (body.get("destination") or len(blocked) == len(targets)):
        code, why = next(iter(blocked.values()))
        raise ApiError(409, code, why if len(blocked) == 1 else f"no destination can pull now: {why}")
    runs, created_any = [], False
    for target in (d for d in targets if d.name not in blocked):
        run, created = pull_service.run_in_background(
            db, settings, ctx, target, {"full": bool(body.get("full"))}, actor
        )
        created_any = created_any or created
        runs.append({**run, "created": created})
    entry.entity = ",".join(f"SyncRun/{r['run_id']}" for r in runs)[:200]
    body_out = {"run_id": runs[0]["run_id"], "runs": runs} if len(runs) == 1 else {"runs": runs}
    if blocked:  # the others were started; these were not, and why
        body_out["skipped"] = [{"destination": n, "reason": why} for n, (_code, why) in blocked.items()]
    return body_out, 202 if created_any else 200


@bp.get("/<run_id>")
def show(run_id: str) -> Response:
    audit("sync.read", entity=f"SyncRun/{run_id[:64]}")
    return answer(run_view(run_id))


def run_view(run_id: str) -> dict[str, Any]:
    """One run with its state, counts and errors (404 when unknown)."""
    with current_app.extensions["horizon.db"].reader() as conn:
        run = RunRepository(conn).get(run_id[:64])
    if run is None:
        raise ApiError(404, "unknown-run", "no sync run with that id")
    return _view(run)
