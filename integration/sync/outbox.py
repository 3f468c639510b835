"""Repository of the outbox: writes waiting for a destination, claimed by lane with a lease.

A lane (a patient, or "~shared" for resources of no patient) is delivered by one worker at a time
and in pk order, so one patient's writes stay in order while other lanes go on. Claiming uses
`FOR UPDATE SKIP LOCKED` on PostgreSQL and one conditional UPDATE on SQLite (whose writers run one
at a time). Outcome updates only touch rows still `pending`, so a worker whose lease ran out
cannot undo what another recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from integration.store.schema import change_feed, sync_lane, sync_outbox

SHARED_LANE = "~shared"


def chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


PENDING, SENT, DEAD = "pending", "sent", "dead"
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_RESERVED = {"authorization", "host", "content-length", "content-type", "cookie", "proxy-authorization"}


@dataclass(frozen=True)
class OutboxWrite:
    """One write to enqueue: a resource version (kind "resource") or any request (kind "request").

    For a request, `method`, `path` (relative to the destination's base URL), `body`,
    `content_type` and extra `headers` (JSON object text) are sent as given; `signer` names a function
    the delivery engine was given (`DeliveryEngine(signers=...)`) that adds headers over the body at
    send time (a webhook HMAC with a fresh timestamp on every try), so signatures are never stored.
    `dedupe_key` makes enqueueing idempotent per destination.
    """

    lane: str
    dedupe_key: str
    kind: str = "resource"
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: int | None = None
    deleted: bool = False
    patient_id: str | None = None
    method: str | None = None
    path: str | None = None
    body: str | None = None
    content_type: str | None = None
    headers: str | None = None
    signer: str | None = None  # resolved when sent (e.g. a webhook HMAC), so no signature is stored

    @classmethod
    def resource(
        cls, resource_type: str, resource_id: str, version_id: int, deleted: bool, patient_id: str | None
    ) -> OutboxWrite:
        return cls(
            lane=patient_id or SHARED_LANE,
            dedupe_key=f"{resource_type}/{resource_id}/_history/{version_id}",
            resource_type=resource_type,
            resource_id=resource_id,
            version_id=version_id,
            deleted=deleted,
            patient_id=patient_id,
        )

    @classmethod
    def request(
        cls,
        *,
        lane: str,
        dedupe_key: str,
        method: str,
        path: str,
        body: str | None,
        content_type: str,
        patient_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        signer: str | None = None,
    ) -> OutboxWrite:
        for name, value in (headers or {}).items():
            if not _HEADER.match(name) or name.lower() in _RESERVED or "\r" in value or "\n" in value:
                raise ValueError(f"header {name[:40]!r} cannot be set on an outbox request")
        return cls(
            lane=lane,
            dedupe_key=dedupe_key,
            kind="request",
            method=method,
            path=path,
            body=body,
            content_type=content_type,
            patient_id=patient_id,
            headers=orjson.dumps(dict(headers)).decode() if headers else None,
            signer=signer,
        )


@dataclass(frozen=True)
class OutboxItem:
    pk: int
    lane: str
    kind: str
    resource_type: str | None
    resource_id: str | None
    version_id: int | None
    deleted: bool
    patient_id: str | None
    method: str | None
    path: str | None
    body: str | None
    content_type: str | None
    attempts: int
    dedupe_key: str
    headers: str | None = None
    signer: str | None = None
    content: str | None = None  # the resource version's stored bytes, read with the claim

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OutboxItem:
        """An item from a claimed row (columns in field order), a third of the frozen __init__'s cost
        (a claim makes one per row, on the thread that paces delivery)."""
        item = object.__new__(cls)
        fields = item.__dict__
        fields.update(zip(_ITEM_FIELDS, row, strict=True))
        fields["deleted"] = bool(fields["deleted"])  # SQLite answers 0/1
        return item


_ITEM_FIELDS = tuple(OutboxItem.__dataclass_fields__)

# OutboxWrite's fields with their PostgreSQL array element types (the enqueue INSERTs name these).
_UNNEST_TYPES = [
    ("lane", "text"),
    ("dedupe_key", "text"),
    ("kind", "text"),
    ("resource_type", "text"),
    ("resource_id", "text"),
    ("version_id", "integer"),
    ("deleted", "boolean"),
    ("patient_id", "text"),
    ("method", "text"),
    ("path", "text"),
    ("body", "text"),
    ("content_type", "text"),
    ("headers", "text"),
    ("signer", "text"),
]
# The outcome columns a row is written with (in this order, after the OutboxWrite's).
_OUTCOME_TYPES = [
    ("status", "text"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("last_status", "integer"),
    ("last_error", "text"),
    ("response", "text"),
]


@dataclass(frozen=True)
class Recorded:
    """An outbox row to write in its final state: a write with its status and attempt so far."""

    write: OutboxWrite
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None = None
    last_error: str | None = None
    response: str | None = None

    @classmethod
    def pending(cls, write: OutboxWrite, due: datetime) -> Recorded:
        return cls(write, PENDING, 0, due)


def _still_open() -> Any:
    """`status = 'pending'` for updates by pk, written so PostgreSQL cannot pick the status index.

    With `status = 'pending'` the planner, trusting statistics taken while nothing was pending (a
    freshly filled outbox, before autovacuum analyzes it), walks every pending row of the
    (destination, status, pk) index for each batch, 10-30 ms a batch; a negated test is not
    indexable, so the pk index answers. The status constraint allows only these three values.
    """
    return sync_outbox.c.status.not_in([SENT, DEAD])


def _stamp(conn: Connection, moment: datetime) -> Any:
    """A timestamp as the store's column type binds it (ISO text on SQLite), for plain driver SQL."""
    process = sync_outbox.c.created_at.type._cached_bind_processor(conn.dialect)
    return process(moment) if process else moment


def _array(conn: Connection, values: Sequence[Any]) -> Any:
    """Values as one parameter: a list (a PostgreSQL array), or JSON array text for SQLite's json_each."""
    return list(values) if conn.dialect.name == "postgresql" else orjson.dumps(list(values)).decode()


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=64)
def driver_sql(dialect: str, sql: str) -> str:
    """Driver SQL written with `:name` parameters, in the driver's style (psycopg: `%(name)s`)."""
    return _NAMED.sub(r"%(\1)s", sql) if dialect == "postgresql" else sql


def _in(dialect: str, column: str, name: str) -> str:
    """`column IN` a one-parameter list (see `_array`)."""
    if dialect == "postgresql":
        return f"{column} = ANY(CAST(:{name} AS {'bigint' if column.endswith('pk') else 'text'}[]))"
    return f"{column} IN (SELECT value FROM json_each(:{name}))"  # noqa: S608


_ROW_COLUMNS = ", ".join(f"o.{f}" for f in _ITEM_FIELDS if f != "content")


@dataclass(frozen=True)
class _ClaimSql:
    """The claim's driver SQL for one dialect and shape: `lease` (None: `rows` leases too) and `rows`.

    Built from fixed fragments only; every value is a bound parameter.
    """

    lease: str | None
    rows: str

    @staticmethod
    @lru_cache(maxsize=16)
    def of(dialect: str, one_lane: bool, exclude: bool) -> _ClaimSql:
        pg = dialect == "postgresql"
        not_in_flight = f" AND NOT ({_in(dialect, 'o.pk', 'exclude')})" if exclude else ""
        # The oldest due rows whose lane nobody else holds and no retry holds back, in pk order
        # (index destination, status, pk; the lane by its primary key).
        due = (
            "SELECT o.lane AS lane, o.pk AS pk FROM sync_outbox AS o"  # noqa: S608
            " WHERE o.destination = :destination AND o.status = 'pending' AND o.next_attempt_at <= :now"
            " AND NOT EXISTS (SELECT 1 FROM sync_lane AS b WHERE b.destination = o.destination"
            " AND b.lane = o.lane AND (b.lease_expires_at >= :now AND b.holder != :holder"
            " OR b.held_until > :now))"
            + (" AND o.lane = :lane" if one_lane else "")
            + not_in_flight
            + " ORDER BY o.pk LIMIT :due"
        )
        # Their lanes, oldest first; of those, the ones free (or already ours), up to `lanes`.
        oldest = "SELECT d.lane FROM (" + due + ") AS d GROUP BY d.lane ORDER BY min(d.pk) LIMIT :candidates"  # noqa: S608
        chosen = (
            "SELECT fl.lane FROM sync_lane AS fl WHERE fl.destination = :destination"  # noqa: S608
            " AND fl.lane IN (" + oldest + ")"
            " AND (fl.lease_expires_at IS NULL OR fl.lease_expires_at < :now OR fl.holder = :holder)"
            " ORDER BY fl.lane LIMIT :lanes" + (" FOR UPDATE SKIP LOCKED" if pg else "")
        )
        lease = (
            "UPDATE sync_lane SET holder = :holder, lease_expires_at = :expires"  # noqa: S608
            " WHERE destination = :destination AND lane IN (" + chosen + ")"
        )

        # The leased lanes' pending rows in pk order (index destination, status, pk), with their bytes.
        def rows(lanes: str) -> str:
            return (
                "SELECT " + _ROW_COLUMNS + ", v.content FROM sync_outbox AS o"  # noqa: S608
                " LEFT OUTER JOIN fhir_resource_version AS v ON v.resource_type = o.resource_type"
                " AND v.id = o.resource_id AND v.version_id = o.version_id"
                " WHERE o.destination = :destination AND o.status = 'pending' AND "
                + lanes
                + not_in_flight
                + " ORDER BY o.pk LIMIT :items"
            )

        if pg:  # one statement: choose (materialized, once), lease, read
            locked = lease.replace("(" + chosen + ")", "(SELECT lane FROM picked)") + " RETURNING lane"  # noqa: S608
            pick = "WITH picked AS MATERIALIZED (" + chosen + "), locked AS (" + locked + ") "
            return _ClaimSql(
                None, driver_sql(dialect, pick + rows("o.lane = ANY(ARRAY(SELECT lane FROM locked))"))
            )
        lanes = _in(dialect, "o.lane", "locked")
        return _ClaimSql(driver_sql(dialect, lease + " RETURNING lane"), driver_sql(dialect, rows(lanes)))


_RELEASE = (
    "UPDATE sync_lane SET holder = NULL, lease_expires_at = NULL"
    " WHERE destination = :destination AND holder = :holder"
)


class OutboxRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # --- enqueueing ----------------------------------------------------------------------------
    def enqueue(
        self,
        destination: str,
        writes: Sequence[OutboxWrite],
        now: datetime,
        run_id: str | None = None,
        *,
        fresh: bool = False,
    ) -> tuple[int, int]:
        """Add writes not yet in the outbox; returns (added, already there and sent).

        `fresh`: the caller knows the keys are new (change-feed rows past the cursor), so the lookup
        of existing keys is skipped; a key that exists anyway is still skipped by the unique key.
        """
        if not writes:
            return 0, 0
        t = sync_outbox.c
        existing: dict[str, str] = {}
        for part in [] if fresh else chunks([w.dedupe_key for w in writes], 500):
            rows = self._conn.execute(
                select(t.dedupe_key, t.status).where(t.destination == destination, t.dedupe_key.in_(part))
            )
            existing.update({r.dedupe_key: r.status for r in rows})
        seen, new = set(existing), []
        for w in writes:  # in order; a key given twice is enqueued once
            if w.dedupe_key not in seen:
                seen.add(w.dedupe_key)
                new.append(w)
        if new:
            self._insert_final(destination, [Recorded.pending(w, now) for w in new], now, run_id)
            lanes = sorted({w.lane for w in new})
            self._conn.execute(
                self._insert(sync_lane).on_conflict_do_nothing(),
                [{"destination": destination, "lane": lane} for lane in lanes],
            )
        return len(new), sum(1 for s in existing.values() if s == SENT)

    def record_final(
        self, destination: str, rows: Sequence[Recorded], now: datetime, run_id: str | None
    ) -> None:
        """Write rows already in their final state (direct delivery, direct.py), in the given order.

        A key already in the outbox is skipped. Lanes with a row that may still be sent (pending, or
        dead and retried by an admin later) get their sync_lane row, which a claim needs.
        """
        if not rows:
            return
        self._insert_final(destination, rows, now, run_id)
        lanes = sorted({r.write.lane for r in rows if r.status != SENT})
        if lanes:
            self._conn.execute(
                self._insert(sync_lane).on_conflict_do_nothing(),
                [{"destination": destination, "lane": lane} for lane in lanes],
            )
        held: dict[str, datetime] = {}
        for r in rows:  # a write to retry holds its lane until its next attempt
            if r.status == PENDING and r.attempts and r.next_attempt_at > now:
                held[r.write.lane] = max(r.next_attempt_at, held.get(r.write.lane, r.next_attempt_at))
        self.hold_lanes(destination, held)

    def _insert_final(
        self, destination: str, rows: Sequence[Recorded], now: datetime, run_id: str | None
    ) -> None:
        """One statement for all rows, in order; a key already there is skipped.

        PostgreSQL: INSERT .. SELECT from unnest(arrays) (psycopg runs an executemany as one INSERT
        per row, 44 us a row). SQLite: one executemany of plain tuples, each timestamp through the
        column type's own bind processor once (through SQLAlchemy, a row's timestamps cost two
        thirds of the enqueue time).
        """
        names = [name for name, _ in _UNNEST_TYPES] + [name for name, _ in _OUTCOME_TYPES]
        columns = ", ".join(names) + ", destination, created_at, updated_at, run_id"
        if self._conn.dialect.name == "postgresql":
            params: dict[str, Any] = {
                name: [getattr(r.write, name) for r in rows] for name, _ in _UNNEST_TYPES
            }
            params.update({name: [getattr(r, name) for r in rows] for name, _ in _OUTCOME_TYPES})
            arrays = ", ".join(f"%({name})s::{kind}[]" for name, kind in (*_UNNEST_TYPES, *_OUTCOME_TYPES))
            self._conn.exec_driver_sql(
                f"INSERT INTO sync_outbox ({columns})"  # noqa: S608
                f" SELECT {', '.join('u.' + c for c in names)}, %(destination)s, %(now)s, %(now)s, %(run_id)s"
                f" FROM unnest({arrays}) WITH ORDINALITY AS u({', '.join(names)}, ord)"
                " ORDER BY u.ord ON CONFLICT DO NOTHING",
                {**params, "destination": destination, "now": now, "run_id": run_id},
            )
            return
        stamp = _stamp(self._conn, now)
        fixed = (destination, stamp, stamp, run_id)
        write_fields = [name for name, _ in _UNNEST_TYPES]
        stamps: dict[datetime, Any] = {now: stamp}
        values = []
        for r in rows:
            due = stamps.get(r.next_attempt_at)
            if due is None:
                due = stamps[r.next_attempt_at] = _stamp(self._conn, r.next_attempt_at)
            outcome = (r.status, r.attempts, due, r.last_status, r.last_error, r.response)
            values.append((*(getattr(r.write, c) for c in write_fields), *outcome, *fixed))
        marks = ", ".join("?" * (len(names) + len(fixed)))
        self._conn.exec_driver_sql(
            f"INSERT INTO sync_outbox ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING",  # noqa: S608
            values,
        )

    def enqueue_changes(
        self,
        destination: str,
        condition: Any,
        lanes: Iterable[str],
        now: datetime,
        run_id: str | None,
        status: str = PENDING,
    ) -> int:
        """Enqueue the change-feed rows matching `condition` (new keys: past the cursor), in seq order,
        with one INSERT .. SELECT; a key that exists anyway is skipped. Returns how many were added.

        The rows are what `OutboxWrite.resource` makes of each change: lane = patient or SHARED_LANE,
        dedupe key Type/id/_history/version. `lanes` names their lanes (sync_lane rows to create).
        `status` SENT records changes already delivered (direct.py) without any row passing through Python.
        """
        c = change_feed.c
        stamp = literal(now, sync_outbox.c.created_at.type)
        rows = (
            select(
                literal(destination, String),
                func.coalesce(c.patient_id, SHARED_LANE),
                c.resource_type + "/" + c.resource_id + "/_history/" + cast(c.version_id, String),
                literal("resource", String),
                c.resource_type,
                c.resource_id,
                c.version_id,
                c.deleted,
                c.patient_id,
                literal(status, String),
                literal(0, Integer),
                stamp,
                stamp,
                stamp,
                literal(run_id, String),
            )
            .where(condition)
            .order_by(c.seq)
        )
        columns = [
            "destination",
            "lane",
            "dedupe_key",
            "kind",
            "resource_type",
            "resource_id",
            "version_id",
            "deleted",
            "patient_id",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
            "run_id",
        ]
        added = self._conn.execute(
            self._insert(sync_outbox).from_select(columns, rows).on_conflict_do_nothing()
        ).rowcount
        if added and lanes:
            self._conn.execute(
                self._insert(sync_lane).on_conflict_do_nothing(),
                [{"destination": destination, "lane": lane} for lane in sorted(set(lanes))],
            )
        return int(added)

    def lanes_pending(self, destination: str, lanes: Iterable[str]) -> set[str]:
        """Of `lanes`, those with a pending row (index destination, status, pk: bounded by what waits)."""
        dialect = self._conn.dialect.name
        sql = (
            "SELECT DISTINCT lane FROM sync_outbox WHERE destination = :destination"  # noqa: S608
            " AND status = 'pending' AND " + _in(dialect, "lane", "lanes")
        )
        params = {"destination": destination, "lanes": _array(self._conn, sorted(set(lanes)))}
        return {r[0] for r in self._conn.exec_driver_sql(driver_sql(dialect, sql), params)}

    def pks_of(self, destination: str, keys: Sequence[str]) -> dict[str, int]:
        """The pk of each given dedupe key's row."""
        t = sync_outbox.c
        found: dict[str, int] = {}
        for part in chunks(list(keys), 500):
            query = select(t.dedupe_key, t.pk).where(t.destination == destination, t.dedupe_key.in_(part))
            found.update({r.dedupe_key: r.pk for r in self._conn.execute(query)})
        return found

    # --- claiming ------------------------------------------------------------------------------
    def claim(
        self,
        destination: str,
        holder: str,
        *,
        lanes: int,
        items: int,
        lease_seconds: float,
        now: datetime,
        lane: str | None = None,
        exclude: Sequence[int] = (),
    ) -> list[OutboxItem]:
        """Lease up to `lanes` lanes with due rows; return up to `items` of their pending rows, in order.

        `exclude`: pks this holder has in flight (sent, outcome not yet recorded). Their lanes stay
        claimable by the same holder, and the rows returned for such a lane are the ones after them;
        the caller sends those only once the lane's in-flight outcome allows it (engine.py).

        The oldest due rows whose lane nobody else holds are read in pk order (index destination,
        status, pk): bounded work per claim, however long the outbox is; their lanes, oldest first,
        are leased and their pending rows read in pk order with their stored bytes. This runs once per
        delivery batch, so it is plain SQL on the driver (SQLAlchemy built and compiled three
        statements a batch, a third of the bookkeeping's time): on PostgreSQL one statement whose
        lane choice is a materialized CTE with SKIP LOCKED (as a plain IN (subquery) PostgreSQL may
        re-run it per row, skip the rows it just locked and so lease more than `lanes` lanes); on
        SQLite, whose writers run one at a time, one UPDATE .. RETURNING and one SELECT.
        """
        sql = _ClaimSql.of(self._conn.dialect.name, lane is not None, bool(exclude))
        stamp, expires = _stamp(self._conn, now), _stamp(self._conn, now + timedelta(seconds=lease_seconds))
        params: dict[str, Any] = {
            "destination": destination,
            "holder": holder,
            "now": stamp,
            "expires": expires,
            "due": items * 2,
            "lanes": lanes,
            "candidates": lanes * 4,
            "items": items,
            "lane": lane,
            "exclude": _array(self._conn, exclude),
        }
        if sql.lease is not None:
            locked = [r[0] for r in self._conn.exec_driver_sql(sql.lease, params).fetchall()]
            if not locked:
                return []
            params["locked"] = _array(self._conn, locked)
        # Straight on the driver's cursor, in this transaction: a batch's rows with their stored bytes
        # skip SQLAlchemy's result rows (a tenth of the claim's time).
        cursor = self._conn.connection.cursor()
        try:
            cursor.execute(sql.rows, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return sorted(map(OutboxItem.from_row, rows), key=lambda item: (item.lane, item.pk))

    def release(self, destination: str, holder: str, keep: Sequence[str] = ()) -> None:
        """Free the holder's lanes, except `keep` (lanes with a batch still in flight)."""
        sql = _RELEASE
        if keep:
            sql += f" AND NOT ({_in(self._conn.dialect.name, 'lane', 'keep')})"
        params = {"destination": destination, "holder": holder, "keep": _array(self._conn, sorted(set(keep)))}
        self._conn.exec_driver_sql(driver_sql(self._conn.dialect.name, sql), params)

    # --- outcomes ------------------------------------------------------------------------------
    def mark_sent(self, pks: Iterable[int], now: datetime, run_id: str | None, status: int | None) -> None:
        self._finish(list(pks), SENT, now, run_id, last_status=status, last_error=None)

    def mark_dead(
        self, pk: int, now: datetime, run_id: str | None, status: int | None, error: str, response: str | None
    ) -> None:
        self._finish([pk], DEAD, now, run_id, last_status=status, last_error=error, response=response)

    def _finish(self, pks: list[int], state: str, now: datetime, run_id: str | None, **values: Any) -> None:
        """One UPDATE of the rows still open (plain driver SQL: it runs once per delivery batch),
        with the status test of `_still_open`."""
        if not pks:
            return
        dialect = self._conn.dialect.name
        names = sorted(values)  # the outcome columns given (fixed names from mark_sent / mark_dead)
        sql = (
            "UPDATE sync_outbox SET status = :status, updated_at = :now, run_id = :run_id"  # noqa: S608
            + "".join(f", {name} = :{name}" for name in names)
            + f" WHERE {_in(dialect, 'pk', 'pks')} AND status NOT IN ('sent', 'dead')"
        )
        params = {**values, "status": state, "now": _stamp(self._conn, now), "run_id": run_id}
        self._conn.exec_driver_sql(driver_sql(dialect, sql), {**params, "pks": _array(self._conn, pks)})

    def defer(
        self,
        item: OutboxItem,
        destination: str,
        until: datetime,
        now: datetime,
        status: int | None,
        error: str,
    ) -> None:
        """Count a failed attempt on `item` and hold its whole lane back until `until`."""
        t = sync_outbox.c
        self._conn.execute(
            update(sync_outbox)
            .where(t.pk == item.pk, _still_open())
            .values(attempts=t.attempts + 1, last_status=status, last_error=error, updated_at=now)
        )
        self._conn.execute(
            update(sync_outbox)
            .where(t.destination == destination, t.lane == item.lane, t.status == PENDING)
            .values(next_attempt_at=until)
        )
        self.hold_lanes(destination, {item.lane: until})

    def hold_lanes(self, destination: str, until: Mapping[str, datetime]) -> None:
        """Nothing of these lanes is due before their time, not even rows queued behind them later."""
        if until:
            lane = sync_lane.c
            self._conn.execute(
                update(sync_lane)
                .where(lane.destination == destination, lane.lane == bindparam("b_lane"))
                .values(held_until=bindparam("b_until")),
                [{"b_lane": name, "b_until": moment} for name, moment in until.items()],
            )

    # --- admin ---------------------------------------------------------------------------------
    def pending_summary(self, destination: str) -> tuple[int, datetime | None]:
        """(outbox depth, oldest pending row's creation time)."""
        t = sync_outbox.c
        row = self._conn.execute(
            select(func.count(), func.min(t.created_at)).where(
                t.destination == destination, t.status == PENDING
            )
        ).one()
        return int(row[0]), row[1]

    def dead_letters(self, destination: str | None, limit: int, before: int | None) -> list[dict[str, Any]]:
        t = sync_outbox.c
        query = select(sync_outbox).where(t.status == DEAD).order_by(t.pk.desc()).limit(limit)
        if destination:
            query = query.where(t.destination == destination)
        if before:
            query = query.where(t.pk < before)
        return [dict(r._mapping) for r in self._conn.execute(query)]

    def get(self, pk: int) -> dict[str, Any] | None:
        row = self._conn.execute(select(sync_outbox).where(sync_outbox.c.pk == pk)).first()
        return dict(row._mapping) if row else None

    def requeue_dead(self, pk: int, now: datetime) -> bool:
        """Put a dead letter back to pending with fresh attempts; False when it is not dead (any more)."""
        t = sync_outbox.c
        result = self._conn.execute(
            update(sync_outbox)
            .where(t.pk == pk, t.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        )
        return result.rowcount == 1

    def counts(self, run_id: str) -> dict[str, int]:
        t = sync_outbox.c
        rows = self._conn.execute(select(t.status, func.count()).where(t.run_id == run_id).group_by(t.status))
        return {r[0]: int(r[1]) for r in rows}
