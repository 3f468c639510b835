"""Repository of the audit log: one row per access to PHI or administrative action."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from integration.store.schema import audit_event


@dataclass(slots=True)
class AuditEntry:
    """What happened, by whom, to which patient's data, and how it ended (HTTP status)."""

    action: str
    outcome: int
    actor: str | None = None
    role: str | None = None
    patient_id: str | None = None
    entity: str | None = None
    request_id: str | None = None
    remote_addr: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


_INSERT = insert(audit_event)  # built once: one row is written for every FHIR request


class AuditRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def record(self, entry: AuditEntry) -> None:
        self._conn.execute(
            _INSERT,
            {
                "recorded_at": entry.recorded_at,
                "request_id": _text(entry.request_id),
                "actor": _text(entry.actor),
                "role": _text(entry.role),
                "action": _text(entry.action),
                "outcome": entry.outcome,
                "patient_id": _text(entry.patient_id),
                "entity": _text(entry.entity),
                "remote_addr": _text(entry.remote_addr),
                "detail": orjson.dumps(entry.detail).decode() if entry.detail else None,  # NULs escaped
            },
        )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.page(limit=limit)

    def page(
        self,
        *,
        limit: int,
        before: int | None = None,
        patient_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; `before` (a pk) continues a page, so pages stay put while new rows arrive."""
        t = audit_event.c
        query = select(audit_event).order_by(t.pk.desc()).limit(limit)
        if before is not None:
            query = query.where(t.pk < before)
        if patient_id is not None:
            query = query.where(t.patient_id == patient_id)
        if action is not None:
            query = query.where(t.action == action)
        if since is not None:
            query = query.where(t.recorded_at >= since)
        return [dict(row._mapping) for row in self._conn.execute(query)]


def _text(value: str | None) -> str | None:
    """A NUL (which PostgreSQL text cannot hold) as U+FFFD: an access must be auditable whatever it sent."""
    return value.replace("\x00", "\ufffd") if value else value
