"""`GET /admin/api/dead-letters` and `POST /admin/api/dead-letters/<id>/retry`, audited.

A dead letter keeps the partner's answer (an OperationOutcome, usually). Retrying puts it back in
the outbox once, with fresh attempts, and starts a run for its destination: a second click finds it
no longer dead and changes nothing, so the write is sent once. Destinations delivered by another
feature (referrer summaries) take part through their `service.DeadLetterHook`, which may refuse (409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from integration.admin.common import answer, destination
from integration.audit import audit
from integration.auth.admin_session import require_admin
from integration.http_errors import ApiError
from integration.store.audit import AuditEntry
from integration.sync import service
from integration.sync.outbox import OutboxRepository

bp = Blueprint("admin_dead_letters", __name__, url_prefix="/admin/api/dead-letters")
bp.before_request(require_admin())

_SHOWN = (
    "pk",
    "destination",
    "kind",
    "resource_type",
    "resource_id",
    "version_id",
    "deleted",
    "method",
    "path",
    "patient_id",
    "status",
    "attempts",
    "last_status",
    "last_error",
    "created_at",
    "updated_at",
)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: row[key] for key in _SHOWN}
    out["id"] = out.pop("pk")
    try:
        out["response"] = orjson.loads(row["response"]) if row["response"] else None
    except orjson.JSONDecodeError:
        out["response"] = row["response"]
    return out


def _int(name: str, default: int | None, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (high is not None and int(raw) > high):
        raise ApiError(
            400,
            "invalid-parameter",
            f"{name} must be a positive integer" + (f" up to {high}" if high else ""),
        )
    return int(raw)


@bp.get("")
def list_dead_letters() -> Response:
    audit("sync.dead-letters.read")
    name = request.args.get("destination")
    if name:
        destination(name)
    count = _int("_count", 100, 1000) or 100
    rows, next_before = page(name, count, _int("_before", None))
    body: dict[str, Any] = {"dead_letters": rows}
    if next_before is not None:
        body["next"] = f"{request.base_url}?_before={next_before}&_count={count}" + (
            f"&destination={name}" if name else ""
        )
    return answer(body)


def page(name: str | None, count: int, before: int | None) -> tuple[list[dict[str, Any]], int | None]:
    """Newest dead letters first (of one destination, or all): (rows, the `_before` of the next page)."""
    with current_app.extensions["horizon.db"].reader() as conn:
        rows = OutboxRepository(conn).dead_letters(name, count + 1, before)
    return [_view(r) for r in rows[:count]], rows[count - 1]["pk"] if len(rows) > count else None


@bp.post("/<int:pk>/retry")
def retry(pk: int) -> Response:
    entry = audit("sync.dead-letter.retry", entity=f"SyncOutbox/{pk}")
    out, status = requeue(pk, entry)
    return answer(out, status)


def requeue(pk: int, entry: AuditEntry) -> tuple[dict[str, Any], int]:
    """Put a dead letter back in flight once and start a run: (answer, 202), or (unchanged, 200).

    404 unknown id and 409 refused by the destination's hook raise ApiError, as the API answers them.
    """
    app = current_app
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    with db.writer() as conn:
        repo = OutboxRepository(conn)
        row = repo.get(pk)
        if row is None:
            raise ApiError(404, "unknown-dead-letter", "no outbox entry with that id")
        entry.patient_id = row["patient_id"]
        requeued = repo.requeue_dead(pk, datetime.now(UTC))
        hook = service.dead_letter_hook(app, row["destination"])
        refused = hook.requeue(conn, row) if requeued and hook is not None else None
        if refused is not None:
            raise ApiError(409, "retry-refused", refused)  # rolls the re-queue back
    if not requeued:
        return {"id": pk, "requeued": False, "status": row["status"]}, 200
    target = service.configured(app).get(row["destination"])
    run = None
    if target is not None and target.delivers:
        run, _created = service.run_in_background(db, settings, target, {}, entry.actor)
    elif hook is not None:
        hook.start(app, row["destination"], entry.actor)
    return {"id": pk, "requeued": True, "run_id": run["run_id"] if run else None}, 202
