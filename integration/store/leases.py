"""Named leases in the database: the one lock that works across processes and hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from integration.store.schema import lease


class LeaseRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def acquire(self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Take or renew the lease; True when `holder` holds it until now + ttl.

        One conditional UPDATE (free, expired, or already ours) or, for a lease never taken, one
        INSERT whose primary key decides the race: atomic on SQLite and PostgreSQL alike.
        """
        now = now or datetime.now(UTC)
        expires = now + timedelta(seconds=ttl_seconds)
        t = lease.c
        result = self._conn.execute(
            update(lease)
            .where(t.name == name, or_(t.holder == holder, t.expires_at < now))
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        if result.rowcount == 1:
            return True
        if self._conn.execute(select(t.name).where(t.name == name)).first() is not None:
            return False
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(lease).values(name=name, holder=holder, acquired_at=now, expires_at=expires)
                )
        except IntegrityError:
            return False
        return True

    def release(self, name: str, holder: str) -> None:
        self._conn.execute(delete(lease).where(lease.c.name == name, lease.c.holder == holder))

    def holder(self, name: str, now: datetime | None = None) -> str | None:
        now = now or datetime.now(UTC)
        row = self._conn.execute(
            select(lease.c.holder, lease.c.expires_at).where(lease.c.name == name)
        ).first()
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        return row.holder if expires >= now else None
