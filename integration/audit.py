"""Audit every request that touches PHI or acts as an admin, refused ones included.

A handler describes the access with `audit(...)`; a write handler hands the entry to the store
so it commits with the data. Whatever is still pending when the response leaves (reads,
refusals, failures) is written in its own transaction by the `after_request` hook.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, request

from integration.fhir_api.outcomes import operation_outcome
from integration.http_errors import error_response
from integration.store.audit import AuditEntry, AuditRepository

log = logging.getLogger(__name__)


def audit(action: str, **fields: Any) -> AuditEntry:
    """Describe this request's access; returns the entry so a writer can commit it with its data."""
    entry = AuditEntry(
        action=action,
        outcome=0,
        actor=g.get("actor"),
        role=g.get("role"),
        request_id=g.get("request_id"),
        remote_addr=request.remote_addr,
        **fields,
    )
    g.audit_entry = entry
    g.audit_written = False
    return entry


def mark_written() -> None:
    """The entry was committed with the request's own transaction; do not write it again."""
    g.audit_written = True


def register(app: Flask) -> None:
    @app.after_request
    def _write_pending(response: Response) -> Response:
        entry: AuditEntry | None = g.get("audit_entry")
        if entry is None or g.get("audit_written"):
            return response
        entry.outcome = response.status_code
        if g.get("admin_session") is not None and "auth" not in entry.detail:
            entry.detail = {**entry.detail, "auth": "session"}  # a browser session, not a bearer token
        try:
            with current_app.extensions["horizon.db"].autocommit() as conn:  # one INSERT, committed
                AuditRepository(conn).record(entry)
        except Exception:
            # An access that cannot be audited must not be served.
            log.exception("audit write failed")
            message, headers = "the audit log cannot be written; try again", {"Retry-After": "5"}
            fmt = g.get("fhir_format")
            if fmt is not None:  # a FHIR request: its errors are OperationOutcomes
                return operation_outcome(503, message, headers, fmt)
            return error_response(503, "audit-unavailable", message, headers)
        g.audit_written = True
        return response
