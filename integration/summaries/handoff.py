"""The hand-off between the summary ledger and the sync outbox: what is waiting, in flight, and how it ended.

A prepared version is handed off by enqueueing its requests as outbox request rows (dedupe key
`summary-delivery/<ledger pk>/<request index>`, lane = the patient) in the same transaction that sets
its `queued_at` (conditionally: a second hand-off of the same version changes nothing, and the dedupe
keys would refuse its rows anyway). The outbox rows' statuses then decide the ledger state (settle):
all sent -> `sent`; one dead -> `dead` with the partner's status and issue codes (the full answer stays
on the dead letter, which the ledger names). An admin retry of such a dead letter puts the version back
to `prepared` (in flight again) in the retry's own transaction, unless a later version of its document
set exists: the referrer must not get stale content after newer content (the retry is refused, 409).

The caller owns the transaction (repository style of integration/store).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from integration.store.schema import summary_delivery, sync_outbox
from integration.summaries.ledger import Entry, SummaryLedger, _entry
from integration.sync.outbox import DEAD, SENT, OutboxRepository, OutboxWrite

KEY_PREFIX = "summary-delivery/"
MAX_REQUESTS = 4  # a payload has 1 (webhook) or 2 (fhir) requests; settle looks up this many keys each


def dedupe_key(pk: int, index: int) -> str:
    return f"{KEY_PREFIX}{pk}/{index}"


def ledger_pk(key: str) -> int | None:
    """The ledger pk an outbox row's dedupe key names, or None when it is not a summary delivery's."""
    if not key.startswith(KEY_PREFIX):
        return None
    head = key[len(KEY_PREFIX) :].split("/", 1)[0]
    return int(head) if head.isdigit() else None


def partner_answer(status: int | None, response: str | None, dead_letter: int) -> str:
    """What the ledger keeps of a refusal: status and OperationOutcome issue codes only (an answer's
    free text may echo PHI); the whole answer stays on the dead letter."""
    codes: list[str] = []
    try:
        body = orjson.loads(response) if response else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        for issue in body.get("issue", [])[:5]:
            if isinstance(issue, dict) and isinstance(issue.get("code"), str):
                codes.append(issue["code"][:40])
    said = f" (issue codes: {', '.join(codes)})" if codes else ""
    shown = f"HTTP {status}" if status is not None else "no answer"
    return f"{shown}{said}; partner's answer on dead letter {dead_letter}"


class Handoff:
    """Reads and writes the hand-off state on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self.ledger = SummaryLedger(connection)

    def waiting(self, referrer: str, limit: int) -> list[Entry]:
        """Prepared versions not yet handed to the outbox, oldest first."""
        t = summary_delivery.c
        query = (
            select(summary_delivery)
            .where(t.referrer == referrer, t.state == "prepared", t.queued_at.is_(None))
            .order_by(t.pk)
            .limit(limit)
        )
        return [_entry(r) for r in self._conn.execute(query)]

    def hand_off(self, entry: Entry, writes: Sequence[OutboxWrite], now: datetime) -> bool:
        """Enqueue the version's requests and record the hand-off, or nothing when it was handed off (or
        left `prepared`) meanwhile."""
        t = summary_delivery.c
        moved = self._conn.execute(
            update(summary_delivery)
            .where(t.pk == entry.pk, t.state == "prepared", t.queued_at.is_(None))
            .values(queued_at=now)
        )
        if moved.rowcount != 1:
            return False
        OutboxRepository(self._conn).enqueue(entry.referrer, writes, now)
        return True

    def in_flight(self, referrer: str, limit: int) -> list[Entry]:
        """Handed-off versions whose outcome is not recorded yet, oldest first."""
        t = summary_delivery.c
        query = (
            select(summary_delivery)
            .where(t.referrer == referrer, t.state == "prepared", t.queued_at.is_not(None))
            .order_by(t.pk)
            .limit(limit)
        )
        return [_entry(r) for r in self._conn.execute(query)]

    def outbox_rows(self, referrer: str, pks: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """Each version's outbox rows (status, last status, answer, pk), in request order."""
        o = sync_outbox.c
        keys = [dedupe_key(pk, i) for pk in pks for i in range(MAX_REQUESTS)]
        out: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(keys), 400):
            rows = self._conn.execute(
                select(o.pk, o.dedupe_key, o.status, o.last_status, o.response)
                .where(o.destination == referrer, o.dedupe_key.in_(keys[start : start + 400]))
                .order_by(o.pk)
            )
            for row in rows:
                pk = ledger_pk(row.dedupe_key)
                if pk is not None:
                    out.setdefault(pk, []).append(dict(row._mapping))
        return out

    def outcome(self, rows: Sequence[dict[str, Any]]) -> tuple[str, str | None] | None:
        """(`sent`, None) when every row is sent, (`dead`, why) when one is dead, else None (pending)."""
        if rows and all(r["status"] == SENT for r in rows):
            return SENT, None
        dead = next((r for r in rows if r["status"] == DEAD), None)
        if dead is not None:
            return DEAD, partner_answer(dead["last_status"], dead["response"], dead["pk"])
        return None

    def superseded_by(self, entry: Entry) -> int | None:
        """The highest later version number of the entry's document set (any state but skipped)."""
        t = summary_delivery.c
        if entry.set_id is None or entry.version is None:
            return None
        later = self._conn.execute(
            select(func.max(t.version)).where(
                t.set_id == entry.set_id, t.version > entry.version, t.state != "skipped"
            )
        ).scalar()
        return int(later) if later is not None else None

    def back_in_flight(self, pk: int) -> bool:
        """dead -> prepared for a version handed off earlier (its dead letter was re-queued)."""
        t = summary_delivery.c
        moved = self._conn.execute(
            update(summary_delivery)
            .where(t.pk == pk, t.state == "dead", t.queued_at.is_not(None))
            .values(state="prepared", detail=None, sent_at=None)
        )
        return moved.rowcount == 1
