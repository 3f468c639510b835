"""Liveness and readiness probes: /healthz says the process answers, /readyz that it can work."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from integration.store import migrate

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    db = current_app.extensions["horizon.db"]
    checks: dict[str, str] = {}
    try:
        with db.reader() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current = migrate.current_revision(db.engine)
        head = migrate.head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, expected {head}"
    except Exception as exc:  # any failure to reach the store means not ready
        checks.setdefault("database", f"unreachable ({type(exc).__name__})")
    ready = all(v == "ok" for v in checks.values()) and len(checks) == 2
    return jsonify({"status": "ready" if ready else "not-ready", "checks": checks}), 200 if ready else 503
