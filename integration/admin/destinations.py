"""`GET /admin/api/destinations` and `POST /admin/api/destinations/<name>/pause|resume`, audited.

Per destination: enabled, paused, circuit state, cursor lag (change-feed entries not yet looked at),
outbox depth, oldest pending age, last success, last run and what was learned about its server.
`?refresh=capabilities` re-reads every delivering destination's CapabilityStatement first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import func, select

from integration.admin.common import answer, destination
from integration.audit import audit
from integration.auth.admin_session import require_admin
from integration.store.schema import change_feed
from integration.sync import service
from integration.sync.engine import DeliveryEngine
from integration.sync.outbox import OutboxRepository
from integration.sync.runs import RunRepository
from integration.sync.state import StateRepository

bp = Blueprint("admin_destinations", __name__, url_prefix="/admin/api/destinations")
bp.before_request(require_admin())


@bp.get("")
def list_destinations() -> Response:
    audit("sync.destinations.read", detail={"refresh": request.args.get("refresh", "")[:20]})
    return answer({"destinations": overview(request.args.get("refresh") == "capabilities")})


def overview(refresh_capabilities: bool = False) -> list[dict[str, Any]]:
    """Every configured destination's state, as the API and the dashboard show it."""
    app = current_app
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    if refresh_capabilities:
        for d in service.configured(app).values():
            if d.delivers:
                DeliveryEngine(db, settings, d).capabilities(refresh=True)
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    with db.reader() as conn:
        head = conn.execute(select(func.max(change_feed.c.seq))).scalar() or 0
        for d in service.configured(app).values():
            state = StateRepository(conn).get(d.name)
            depth, oldest = OutboxRepository(conn).pending_summary(d.name)
            last_run = RunRepository(conn).last(d.name)
            out.append(
                {
                    "name": d.name,
                    "kind": d.kind,
                    "enabled": d.enabled,
                    "delivers": d.delivers,
                    "pulls": d.pulls,
                    "origin": d.origin,
                    "paused": state.paused,
                    "circuit": state.breaker.current(now, d.breaker),
                    "consecutive_failures": state.breaker.failures,
                    "cursor": state.cursor_seq,
                    "cursor_lag": max(head - state.cursor_seq, 0),
                    "outbox_depth": depth,
                    "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 1)
                    if oldest
                    else None,
                    "last_success": state.last_success_at,
                    "last_run": {
                        k: last_run[k] for k in ("run_id", "state", "started_at", "finished_at", "counts")
                    }
                    if last_run
                    else None,
                    "capabilities": state.capabilities,
                    "capabilities_at": state.capabilities_at,
                }
            )
    return out


def set_paused(name: str, paused: bool) -> str:
    """Pause or resume the named destination (404 when unknown); returns its name."""
    target = destination(name)
    with current_app.extensions["horizon.db"].writer() as conn:
        StateRepository(conn).set_paused(target.name, paused)
    return target.name


def _set_paused(name: str, paused: bool) -> Response:
    audit("sync.pause" if paused else "sync.resume", entity=f"Destination/{name[:64]}")
    return answer({"name": set_paused(name, paused), "paused": paused})


@bp.post("/<name>/pause")
def pause(name: str) -> Response:
    return _set_paused(name, True)


@bp.post("/<name>/resume")
def resume(name: str) -> Response:
    return _set_paused(name, False)
