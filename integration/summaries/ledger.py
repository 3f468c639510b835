"""The summary ledger: what is due, prepared and sent to which referrer, so each content goes out once.

States: `due` (a trigger fired for a patient and referrer; written with the cursor that saw it) ->
`prepared` (one document version with its payload, built once) -> `sent` or `dead` (set by the transport;
`queued_at` marks the hand-off to the outbox, and an admin retry of a dead version that nothing
superseded puts it back to `prepared`: handoff.py).
A due row that produced nothing new becomes `skipped` (detail says why; purged after a retention).
Preparation runs in one transaction: a crash leaves the due row due, to be prepared again; the unique
(set_id, version) and the conditional `due -> prepared` update keep two preparers from writing a version
twice.

The caller owns the transaction (repository style of integration/store).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from integration.store.schema import summary_cursor, summary_delivery
from integration.summaries.model import Summary

LIVE = ("prepared", "sent")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ADD_DUE_ATTEMPTS = 5


def _insert(conn: Connection) -> Callable[..., Any]:
    """The dialect's INSERT, which has ON CONFLICT (both backends support it with partial indexes)."""
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def content_hash(summary: Summary) -> str:
    """SHA-256 of the computed summary without its volatile field (generation time): equal content, equal
    hash, whenever and however often it is computed."""
    stable = dataclasses.replace(summary, generated_at=_EPOCH)
    return hashlib.sha256(orjson.dumps(stable)).hexdigest()


class NotDue(RuntimeError):
    """The due row was prepared or skipped by someone else meanwhile."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger row."""

    pk: int
    patient_id: str
    referrer: str
    state: str
    reasons: tuple[str, ...]
    set_id: str | None
    version: int | None
    period_start: date | None
    period_end: date | None
    content_hash: str | None
    document_id: str | None
    replaces_pk: int | None
    channel: str | None
    payload: str | None
    created_at: datetime
    prepared_at: datetime | None
    sent_at: datetime | None
    detail: str | None
    queued_at: datetime | None = None  # when the transport enqueued its requests (transport.py)

    def summary(self) -> dict[str, Any]:
        """The row without its payload, for admin answers and reports."""
        return {
            "id": self.pk,
            "patient": self.patient_id,
            "referrer": self.referrer,
            "state": self.state,
            "reasons": list(self.reasons),
            "set_id": self.set_id,
            "version": self.version,
            "period": {
                "start": self.period_start.isoformat() if self.period_start else None,
                "end": self.period_end.isoformat() if self.period_end else None,
            },
            "content_hash": self.content_hash,
            "composition_id": self.document_id,
            "replaces": self.replaces_pk,
            "channel": self.channel,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A document version to record as prepared."""

    reasons: tuple[str, ...]
    set_id: str
    version: int
    period_start: date | None
    period_end: date | None
    content_hash: str
    document_id: str
    replaces_pk: int | None
    channel: str
    payload: str


def _entry(row: Any) -> Entry:
    m = dict(row._mapping)
    m["reasons"] = tuple(orjson.loads(m["reasons"]))
    return Entry(**m)


class SummaryLedger:
    """Reads and writes the ledger on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def add_due(self, patient_id: str, referrer: str, reasons: Sequence[str], now: datetime) -> int:
        """Record a trigger; an open due row for the same pair absorbs the new reasons instead.

        Race-free under concurrent writers (the scan, a digest, an admin trigger): the insert gives way to
        an open due row (the partial unique index `uq_summary_delivery_due_pair`), which is then locked
        before its reasons are merged, so no reason is lost to a concurrent merge either.
        """
        t = summary_delivery.c
        for _ in range(_ADD_DUE_ATTEMPTS):
            inserted = self._conn.execute(
                _insert(self._conn)(summary_delivery)
                .values(
                    patient_id=patient_id,
                    referrer=referrer,
                    state="due",
                    reasons=orjson.dumps(sorted(set(reasons))).decode(),
                    created_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=["patient_id", "referrer"], index_where=t.state == "due"
                )
                .returning(t.pk)
            ).scalar()
            if inserted is not None:
                return int(inserted)
            row = self._conn.execute(
                select(t.pk, t.reasons)
                .where(t.patient_id == patient_id, t.referrer == referrer, t.state == "due")
                .with_for_update()
            ).first()
            if row is None:
                continue  # prepared or skipped since the insert gave way: this trigger opens a new row
            merged = sorted(set(orjson.loads(row.reasons)) | set(reasons))
            self._conn.execute(
                update(summary_delivery).where(t.pk == row.pk).values(reasons=orjson.dumps(merged).decode())
            )
            return int(row.pk)
        raise RuntimeError("summary ledger: the open due row kept changing state; try again")

    def get(self, pk: int) -> Entry | None:
        row = self._conn.execute(select(summary_delivery).where(summary_delivery.c.pk == pk)).first()
        return _entry(row) if row else None

    def due(
        self, *, patient_id: str | None = None, referrer: str | None = None, limit: int = 100
    ) -> list[Entry]:
        """Open due rows, oldest first."""
        t = summary_delivery.c
        query = select(summary_delivery).where(t.state == "due")
        if patient_id is not None:
            query = query.where(t.patient_id == patient_id)
        if referrer is not None:
            query = query.where(t.referrer == referrer)
        return [_entry(r) for r in self._conn.execute(query.order_by(t.pk).limit(limit))]

    def heads(self, patient_id: str, referrer: str) -> list[Entry]:
        """The latest live (prepared or sent) version of each document set of the pair."""
        t = summary_delivery.c
        latest = (
            select(t.set_id, func.max(t.version).label("version"))
            .where(t.patient_id == patient_id, t.referrer == referrer, t.state.in_(LIVE))
            .group_by(t.set_id)
            .subquery()
        )
        rows = self._conn.execute(
            select(summary_delivery)
            .join(latest, (t.set_id == latest.c.set_id) & (t.version == latest.c.version))
            .order_by(t.period_start.is_not(None), t.period_start)
        )
        return [_entry(r) for r in rows]

    def numbered(self, patient_id: str, referrer: str) -> dict[str, int]:
        """Each document set's highest version number, whatever its state."""
        t = summary_delivery.c
        rows = self._conn.execute(
            select(t.set_id, func.max(t.version).label("version"))
            .where(t.patient_id == patient_id, t.referrer == referrer, t.set_id.is_not(None))
            .group_by(t.set_id)
        )
        return {r.set_id: int(r.version) for r in rows}

    def record(self, due_pk: int, versions: Sequence[NewVersion], now: datetime) -> list[int]:
        """Turn the due row into the first prepared version and add the others; no versions: skipped.

        Raises NotDue when the row is no longer due (another preparer won); the caller rolls back.
        """
        t = summary_delivery.c
        due = self.get(due_pk)
        if due is None or due.state != "due":
            raise NotDue(f"summary delivery {due_pk} is not due")
        if not versions:
            self.skip(due_pk, "nothing new to send", now)
            return []
        pks = []
        for i, v in enumerate(versions):
            values = {
                "state": "prepared",
                "reasons": orjson.dumps(list(v.reasons)).decode(),
                "set_id": v.set_id,
                "version": v.version,
                "period_start": v.period_start,
                "period_end": v.period_end,
                "content_hash": v.content_hash,
                "document_id": v.document_id,
                "replaces_pk": v.replaces_pk,
                "channel": v.channel,
                "payload": v.payload,
                "prepared_at": now,
            }
            if i == 0:
                moved = self._conn.execute(
                    update(summary_delivery).where(t.pk == due_pk, t.state == "due").values(**values)
                )
                if moved.rowcount != 1:
                    raise NotDue(f"summary delivery {due_pk} is not due")
                pks.append(due_pk)
            else:
                values.update(patient_id=due.patient_id, referrer=due.referrer, created_at=now)
                pks.append(
                    int(self._conn.execute(insert(summary_delivery).values(**values)).inserted_primary_key[0])
                )
        return pks

    def skip(self, due_pk: int, detail: str, now: datetime) -> bool:
        t = summary_delivery.c
        done = self._conn.execute(
            update(summary_delivery)
            .where(t.pk == due_pk, t.state == "due")
            .values(state="skipped", detail=detail, prepared_at=now)
        )
        return done.rowcount == 1

    def purge_skipped(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` skipped rows that were skipped before `before`; returns how many. Nothing
        refers to them (`replaces_pk` and the version numbers are those of prepared rows)."""
        t = summary_delivery.c
        oldest = (
            select(t.pk)
            .where(t.state == "skipped", t.prepared_at < before)
            .order_by(t.pk)
            .limit(limit)
            .scalar_subquery()
        )
        return int(self._conn.execute(delete(summary_delivery).where(t.pk.in_(oldest))).rowcount)

    # --- the transport's side ------------------------------------------------------------------------

    def prepared(self, *, referrer: str | None = None, limit: int = 100) -> list[Entry]:
        """Prepared versions waiting to be sent, oldest first (send a pair's versions in this order)."""
        t = summary_delivery.c
        query = select(summary_delivery).where(t.state == "prepared")
        if referrer is not None:
            query = query.where(t.referrer == referrer)
        return [_entry(r) for r in self._conn.execute(query.order_by(t.pk).limit(limit))]

    def mark_sent(self, pk: int, now: datetime) -> bool:
        """prepared -> sent; False when it was not prepared (already sent or dead: nothing changes)."""
        t = summary_delivery.c
        done = self._conn.execute(
            update(summary_delivery)
            .where(t.pk == pk, t.state == "prepared")
            .values(state="sent", sent_at=now)
        )
        return done.rowcount == 1

    def mark_dead(self, pk: int, detail: str, now: datetime) -> bool:
        """prepared -> dead with the reason (e.g. the partner's OperationOutcome, no PHI)."""
        t = summary_delivery.c
        done = self._conn.execute(
            update(summary_delivery)
            .where(t.pk == pk, t.state == "prepared")
            .values(state="dead", detail=detail, sent_at=now)
        )
        return done.rowcount == 1

    def entries(self, *, patient_id: str | None = None, referrer: str | None = None) -> list[Entry]:
        t = summary_delivery.c
        query = select(summary_delivery)
        if patient_id is not None:
            query = query.where(t.patient_id == patient_id)
        if referrer is not None:
            query = query.where(t.referrer == referrer)
        return [_entry(r) for r in self._conn.execute(query.order_by(t.pk))]

    # --- the trigger scan's cursor ---------------------------------------------------------------------

    def cursor(self, name: str) -> int:
        row = self._conn.execute(select(summary_cursor.c.seq).where(summary_cursor.c.name == name)).first()
        return int(row.seq) if row else 0

    def advance_cursor(self, name: str, seen: int, seq: int, now: datetime) -> bool:
        """Move the cursor from `seen` to `seq`; False when another scanner moved it meanwhile."""
        t = summary_cursor.c
        moved = self._conn.execute(
            update(summary_cursor).where(t.name == name, t.seq == seen).values(seq=seq, updated_at=now)
        )
        if moved.rowcount == 1:
            return True
        if seen == 0 and self._conn.execute(select(t.seq).where(t.name == name)).first() is None:
            self._conn.execute(insert(summary_cursor).values(name=name, seq=seq, updated_at=now))
            return True
        return False
