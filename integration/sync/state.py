"""Repository of per-destination sync state: cursor, pause switch, circuit breaker, learned capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from integration.store.schema import sync_destination
from integration.sync.breaker import Breaker


@dataclass(frozen=True)
class DestinationState:
    name: str
    cursor_seq: int
    paused: bool
    breaker: Breaker
    capabilities: dict[str, Any] | None
    capabilities_at: datetime | None
    last_success_at: datetime | None


class StateRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def get(self, name: str, *, lock: bool = False) -> DestinationState:
        """The destination's state (created on first use); `lock` holds its row until commit.

        The lock serializes cursor moves between workers on PostgreSQL; on SQLite every writer is
        already alone (BEGIN IMMEDIATE).
        """
        query = select(sync_destination).where(sync_destination.c.name == name)
        if lock and self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        if row is None:  # first use: create it (one query per call otherwise, twice per sync batch)
            self._ensure(name)
            row = self._conn.execute(query).one()
        return DestinationState(
            name=row.name,
            cursor_seq=row.cursor_seq,
            paused=row.paused,
            breaker=Breaker(row.breaker_state, row.breaker_failures, row.breaker_opened_at),
            capabilities=orjson.loads(row.capabilities) if row.capabilities else None,
            capabilities_at=row.capabilities_at,
            last_success_at=row.last_success_at,
        )

    def _ensure(self, name: str) -> None:
        t = sync_destination.c
        if self._conn.execute(select(t.name).where(t.name == name)).first() is not None:
            return
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(sync_destination).values(
                        name=name,
                        cursor_seq=0,
                        paused=False,
                        breaker_state="closed",
                        breaker_failures=0,
                        updated_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            pass  # another worker created it first

    def _set(self, name: str, **values: Any) -> None:
        statement = (
            update(sync_destination)
            .where(sync_destination.c.name == name)
            .values(**values, updated_at=datetime.now(UTC))
        )
        if self._conn.execute(statement).rowcount == 0:  # first use: create it, then set
            self._ensure(name)
            self._conn.execute(statement)

    def set_cursor(self, name: str, seq: int) -> None:
        self._set(name, cursor_seq=seq)

    def set_paused(self, name: str, paused: bool) -> None:
        self._set(name, paused=paused)

    def set_breaker(self, name: str, breaker: Breaker) -> None:
        self._set(
            name,
            breaker_state=breaker.state,
            breaker_failures=breaker.failures,
            breaker_opened_at=breaker.opened_at,
        )

    def set_capabilities(self, name: str, capabilities: dict[str, Any], now: datetime) -> None:
        self._set(name, capabilities=orjson.dumps(capabilities).decode(), capabilities_at=now)

    def mark_success(self, name: str, now: datetime) -> None:
        self._set(name, last_success_at=now)

    def record_exchange(self, state: DestinationState, breaker: Breaker, success_at: datetime | None) -> None:
        """After a delivery batch: the breaker if it changed, and the last success, in one statement."""
        values: dict[str, Any] = {}
        if breaker != state.breaker:
            values.update(
                breaker_state=breaker.state,
                breaker_failures=breaker.failures,
                breaker_opened_at=breaker.opened_at,
            )
        if success_at is not None:
            values["last_success_at"] = success_at
        if values:
            self._set(state.name, **values)
