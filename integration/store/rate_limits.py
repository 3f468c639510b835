"""Fixed-window hit counters in the database, so every worker process counts against one limit.

A hit is one upsert that returns the window's new count (INSERT .. ON CONFLICT DO UPDATE ..
RETURNING, atomic on SQLite and PostgreSQL): concurrent workers never lose a hit, and `make run`
needs no Redis. Fixed windows let up to twice the limit through across a window boundary; for the
token endpoint, whose clients need one request per token lifetime, that slack is harmless, and the
Retry-After it gives (the end of the window) is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from integration.store.schema import rate_limit_window

W = rate_limit_window.c


@dataclass(frozen=True, slots=True)
class Count:
    """Hits of a bucket in the current window, and the seconds until that window ends."""

    hits: int
    window_ends_in: int


class RateCounters:
    """Counters on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def hit(self, bucket: str, window_seconds: int, now: float) -> Count:
        """Count one hit; the first hit of a new window also deletes every window before it."""
        start = _window_start(window_seconds, now)
        stmt = (
            _insert(self._conn)(rate_limit_window)
            .values(bucket=bucket, window_start=start, hits=1)
            .on_conflict_do_update(index_elements=["bucket", "window_start"], set_={"hits": W.hits + 1})
            .returning(W.hits)
        )
        hits = self._conn.execute(stmt).scalar_one()
        if hits == 1:
            self._conn.execute(delete(rate_limit_window).where(W.window_start < start))
        return Count(hits, _ends_in(start, window_seconds, now))

    def peek(self, bucket: str, window_seconds: int, now: float) -> Count:
        """The current window's hits, without counting one."""
        start = _window_start(window_seconds, now)
        hits = self._conn.execute(
            select(W.hits).where(W.bucket == bucket, W.window_start == start)
        ).scalar_one_or_none()
        return Count(hits or 0, _ends_in(start, window_seconds, now))


def _window_start(window_seconds: int, now: float) -> int:
    return int(now) // window_seconds * window_seconds


def _ends_in(start: int, window_seconds: int, now: float) -> int:
    return max(1, math.ceil(start + window_seconds - now))


def _insert(conn: Connection) -> Callable[..., Any]:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
