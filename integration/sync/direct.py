"""Delivery straight from the change feed, for changes whose lane has nothing waiting in the outbox.

The outbox path (`feed.advance` writes a pending row per version, a claim leases and reads it back,
an UPDATE marks it sent) touches each version's row three times. In the common case, a backlog of
new changes whose lanes have nothing waiting, this path reads the feed past the destination's
cursor with the stored bytes, sends, and then writes each version's outbox row once, already in its
final state (sent; pending with the attempt counted and the lane held; dead with the partner's
answer), moving the cursor in the same transaction. The outbox keeps the same rows either way.

What cannot go this way is written as a pending row in feed order, for the outbox path to deliver
after whatever came before it in its lane: a change whose lane has a pending row, a second version of
one resource in a chunk (one entry per resource per Bundle), the rest of a lane after a write to
retry, and everything after an unhealthy exchange. The cursor moves only by compare-and-set from where
this run read it, so a second consumer of the same cursor makes this one stop without recording.
A crash between send and record leaves the cursor where it was: the next run sends those again
(idempotent writes: the effect is once).

Runs of one patient, and full re-offers, keep to the outbox path (`service.execute`).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, update

from integration.store.schema import change_feed, sync_destination
from integration.sync import retry
from integration.sync.breaker import CLOSED
from integration.sync.capabilities import choose
from integration.sync.engine import GROUP_MAX, Counts, DeliveryEngine
from integration.sync.feed import consenting
from integration.sync.outbox import (
    DEAD,
    PENDING,
    SENT,
    SHARED_LANE,
    OutboxItem,
    OutboxRepository,
    OutboxWrite,
    Recorded,
    driver_sql,
)
from integration.sync.runs import RunRepository
from integration.sync.sender import Result
from integration.sync.state import DestinationState, StateRepository

log = logging.getLogger(__name__)

# The next rows of the feed, then each one's stored bytes by primary key: a join let PostgreSQL hash
# the whole version table for every chunk (its statistics of a fresh table), linear in the store.
_FEED = (
    "SELECT c.seq, c.resource_type, c.resource_id, c.version_id, c.deleted, c.patient_id,"
    " (SELECT v.content FROM fhir_resource_version AS v WHERE v.resource_type = c.resource_type"
    " AND v.id = c.resource_id AND v.version_id = c.version_id) AS content"
    " FROM (SELECT seq, resource_type, resource_id, version_id, deleted, patient_id FROM change_feed"
    " WHERE seq > :after ORDER BY seq LIMIT :rows) AS c ORDER BY c.seq"
)


@dataclass
class _Chunk:
    """A stretch of the feed (after, upto]: its eligible changes in feed order, and which of them go now.

    `rows` are the feed's tuples (seq, type, id, version, deleted, patient, content): a write object
    is made only for a change that is not delivered (a frozen dataclass per row cost a third of a read).
    """

    after: int
    upto: int
    rows: list[Any]
    sending: list[OutboxItem]  # items whose pk is minus the row's index + 1 in `rows`
    eligible: Any = None  # the change-feed condition of `rows` (range, types, consent)


class _CursorMoved(Exception):
    """Another consumer moved the cursor since this chunk was read."""


class DirectDelivery:
    def __init__(self, engine: DeliveryEngine) -> None:
        self.engine = engine
        self.db = engine.db
        self.destination = engine.destination

    def deliver(self, run_id: str | None, counts: Counts) -> None:
        """Send the feed past the cursor chunk by chunk; stop at its end, when paused, when the breaker
        is not closed, or after an unhealthy exchange (what is left is for the outbox path).

        As in the outbox path, one chunk is in flight on a sender thread while this thread records
        the one before and reads the next (one transaction); a chunk read while another was in flight
        sends nothing of a lane whose in-flight write must be retried or was left unsent.
        """
        mode, conditional = choose(self.destination, self.engine.capabilities())
        size = self.destination.batch_size
        group = 1
        healthy = True  # after an unhealthy exchange nothing more is read: the rest is the outbox's
        done: tuple[_Chunk, list[Result], bool] | None = None
        flight: tuple[_Chunk, Future[tuple[list[Result], bool]]] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix=f"sync-direct-{self.destination.name}") as pool:
            while True:
                now = datetime.now(UTC)
                try:
                    with self.db.writer() as conn:
                        state = self._record(conn, done, run_id, counts)
                        done = None
                        chunk = None
                        if healthy and self._may_read(state, now):
                            after = flight[0].upto if flight is not None else state.cursor_seq
                            chunk = self._read(conn, after, size * group)
                except _CursorMoved:
                    log.warning("sync direct: cursor moved", extra={"destination": self.destination.name})
                    if flight is not None:
                        flight[1].result()  # its outcome is the other consumer's to record
                    return
                if flight is not None:
                    sent, healthy = flight[1].result()
                    done = (flight[0], sent, healthy)
                    if self.engine.after_send is not None:
                        self.engine.after_send()
                    flight = None
                    if chunk is not None:
                        chunk.sending = _still_clear(chunk.sending, done) if healthy else []
                if chunk is not None and chunk.sending:
                    group = min(group * 2, GROUP_MAX)
                    items = chunk.sending
                    flight = (
                        chunk,
                        pool.submit(self.engine.send_group, items, mode, conditional, float("inf")),
                    )
                    continue
                if chunk is not None and (chunk.rows or chunk.upto > chunk.after):
                    if done is not None:
                        with self.db.writer() as conn:  # the chunk before, then this one (nothing sent)
                            self._record(conn, done, run_id, counts)
                        done = None
                    done = (chunk, [], True)
                    continue
                if done is not None:
                    continue  # record it, then read again
                return

    def _may_read(self, state: DestinationState, now: datetime) -> bool:
        return not state.paused and state.breaker.current(now, self.destination.breaker) == CLOSED

    def _read(
        self,
        conn: Connection,
        after: int,
        rows: int,
    ) -> _Chunk | None:
        """The next `rows` feed rows past `after`: eligible writes (type, consent), and those to send."""
        dialect = conn.dialect.name
        cursor = conn.connection.cursor()
        try:
            cursor.execute(driver_sql(dialect, _FEED), {"after": after, "rows": rows})
            feed = cursor.fetchall()
        finally:
            cursor.close()
        if not feed:
            return None
        upto = int(feed[-1][0])
        c = change_feed.c
        wanted = [c.seq > after, c.seq <= upto]
        types = set(self.destination.resource_types)
        if types:
            feed = [r for r in feed if r[1] in types]
            wanted.append(c.resource_type.in_(sorted(types)))
        if self.destination.patients == "consented":
            patients = {r[5] for r in feed if r[5]}
            refused = patients - consenting(conn, patients, self.destination.name)
            feed = [r for r in feed if r[5] not in refused]
            if refused:
                wanted.append(or_(c.patient_id.is_(None), c.patient_id.not_in(sorted(refused))))
        chunk = _Chunk(after, upto, feed, [], and_(*wanted))
        if not feed:
            return chunk
        waiting = OutboxRepository(conn).lanes_pending(self.destination.name, {_lane(r) for r in feed})
        seen: set[tuple[str, str]] = set()
        for n, r in enumerate(feed):
            lane = _lane(r)
            if lane in waiting:
                continue
            if (r[1], r[2]) in seen:  # one entry per resource (engine.one_entry_per_resource)
                waiting.add(lane)  # the rest of this lane waits
                continue
            seen.add((r[1], r[2]))
            chunk.sending.append(_item(n, lane, r))
        return chunk

    def _record(
        self,
        conn: Connection,
        done: tuple[_Chunk, list[Result], bool] | None,
        run_id: str | None,
        counts: Counts,
    ) -> DestinationState:
        """Write a chunk's outbox rows in their final state and move the cursor over it (compare-and-set)."""
        states = StateRepository(conn)
        state = states.get(self.destination.name)
        if done is None:
            return state
        chunk, results, healthy = done
        moved = conn.execute(
            update(sync_destination)
            .where(
                sync_destination.c.name == self.destination.name, sync_destination.c.cursor_seq == chunk.after
            )
            .values(cursor_seq=chunk.upto, updated_at=datetime.now(UTC))
        ).rowcount
        if moved != 1:
            raise _CursorMoved
        state = replace(state, cursor_seq=chunk.upto)
        now = datetime.now(UTC)
        by_index = {-r.item.pk - 1: r for r in results}
        others, held = self._outcomes(chunk.rows, by_index, now, counts)
        outbox = OutboxRepository(conn)
        outbox.record_final(self.destination.name, others, now, run_id)  # first: they take their keys
        dead = [r for r in others if r.status == DEAD]
        pks = outbox.pks_of(self.destination.name, [r.write.dedupe_key for r in dead]) if dead else {}
        for r in dead:  # as the outbox path reports them: by outbox row, as the dead-letter list shows
            pk, why = pks.get(r.write.dedupe_key), str(r.last_error)[:300]
            counts.errors.append({"at": now.isoformat(), "outbox": pk, "status": r.last_status, "error": why})
        sent = len(chunk.rows) - len(others)
        if sent:  # the rest was delivered: one INSERT .. SELECT from the feed, no row through Python
            outbox.enqueue_changes(self.destination.name, chunk.eligible, (), now, run_id, status=SENT)
        if results:
            policy = self.destination.breaker
            breaker = state.breaker.success() if healthy else state.breaker.failure(now, policy)
            states.record_exchange(state, breaker, now if healthy and sent else None)
            state = replace(state, breaker=breaker)
        if run_id:
            RunRepository(conn).heartbeat(run_id, counts.as_dict(), counts.errors, now)
        log.info(
            "sync direct chunk",
            extra={
                "destination": self.destination.name,
                "entries": len(chunk.rows),
                "sent": sent,
                "held": held,
            },
        )
        return state

    def _outcomes(
        self,
        feed: list[Any],
        results: dict[int, Result],
        now: datetime,
        counts: Counts,
    ) -> tuple[list[Recorded], int]:
        """The rows of writes not delivered: pending (not sent, or to retry: its lane held) or dead;
        and how many lanes are held back for a retry. Delivered ones are only counted."""
        policy = self.destination.retry
        hold: dict[str, datetime] = {}
        rows: list[Recorded] = []
        for n, row in enumerate(feed):
            r = results.get(n)
            if r is not None and r.verdict is retry.Verdict.OK:
                counts.sent += 1
                continue
            write = OutboxWrite.resource(row[1], row[2], row[3], bool(row[4]), row[5])
            if r is None:
                rows.append(Recorded(write, PENDING, 0, hold.get(write.lane, now)))
                continue
            if r.verdict is retry.Verdict.RETRY and policy.max_attempts > 1:
                delay = retry.next_delay(1, policy, r.retry_after, self.engine.rng)
                until = now + timedelta(seconds=delay)
                hold[write.lane] = max(until, hold.get(write.lane, until))
                rows.append(Recorded(write, PENDING, 1, until, r.status, r.error))
                counts.retrying += 1
                continue
            error = (
                r.error if r.verdict is not retry.Verdict.RETRY else f"gave up after 1 attempts: {r.error}"
            )
            rows.append(Recorded(write, DEAD, 0, now, r.status, error, r.response))
            counts.dead += 1
        return rows, len(hold)


def _lane(row: Any) -> str:
    return row[5] or SHARED_LANE


def _item(n: int, lane: str, row: Any) -> OutboxItem:
    """A feed row as a claimed item would be (pk: minus its index + 1, so results map back to it)."""
    _seq, resource_type, resource_id, version_id, deleted, patient_id, content = row
    key = f"{resource_type}/{resource_id}/_history/{version_id}"
    fields = (lane, "resource", resource_type, resource_id, version_id, deleted, patient_id)
    return OutboxItem.from_row((-n - 1, *fields, None, None, None, None, 0, key, None, None, content))


def _still_clear(items: list[OutboxItem], done: tuple[_Chunk, list[Result], bool]) -> list[OutboxItem]:
    """Of a chunk read while the one before was in flight, what may go now that its outcome is in:
    nothing of a lane whose in-flight write must be retried or was left unsent."""
    chunk, results, _healthy = done
    answered = {-r.item.pk - 1 for r in results if r.verdict is not retry.Verdict.RETRY}
    in_flight = {-i.pk - 1 for i in chunk.sending}
    waiting = {_lane(chunk.rows[n]) for n in in_flight if n not in answered}
    return [i for i in items if i.lane not in waiting] if waiting else items
