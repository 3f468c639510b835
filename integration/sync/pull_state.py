"""Repository of pull state: the `_lastUpdated` watermark per destination and type, and the version of
each remote resource already applied, so an overlapping re-read never applies a version twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, tuple_, update

from integration.store.schema import sync_pull_seen, sync_pull_state
from integration.sync.outbox import chunks


class PullStateRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def watermark(self, destination: str, resource_type: str) -> datetime | None:
        t = sync_pull_state.c
        return self._conn.execute(
            select(t.watermark).where(t.destination == destination, t.resource_type == resource_type)
        ).scalar()

    def advance(
        self, destination: str, resource_type: str, watermark: datetime | None, mode: str, now: datetime
    ) -> None:
        """Move the watermark forward (never back) and note the search mode used."""
        t = sync_pull_state.c
        where = (t.destination == destination, t.resource_type == resource_type)
        row = self._conn.execute(select(t.watermark).where(*where)).first()
        if row is None:
            self._conn.execute(
                insert(sync_pull_state).values(
                    destination=destination,
                    resource_type=resource_type,
                    watermark=watermark,
                    mode=mode,
                    updated_at=now,
                )
            )
            return
        if row.watermark is not None and (watermark is None or watermark < row.watermark):
            watermark = row.watermark
        self._conn.execute(
            update(sync_pull_state).where(*where).values(watermark=watermark, mode=mode, updated_at=now)
        )

    def reset(self, destination: str) -> None:
        """Forget the watermarks and versions seen (a full re-pull)."""
        self._conn.execute(delete(sync_pull_state).where(sync_pull_state.c.destination == destination))
        self._conn.execute(delete(sync_pull_seen).where(sync_pull_seen.c.destination == destination))

    def seen(self, destination: str, resource_type: str, remote_ids: Iterable[str]) -> dict[str, str]:
        """remote id -> version key last applied, for the ids given."""
        t = sync_pull_seen.c
        out: dict[str, str] = {}
        for part in chunks(list(set(remote_ids)), 500):
            rows = self._conn.execute(
                select(t.remote_id, t.version_key).where(
                    t.destination == destination, t.resource_type == resource_type, t.remote_id.in_(part)
                )
            )
            out.update({r.remote_id: r.version_key for r in rows})
        return out

    def mark_seen(
        self, destination: str, resource_type: str, versions: Mapping[str, tuple[str, str]], now: datetime
    ) -> None:
        """Record remote id -> (version key, outcome), replacing what was recorded before."""
        if not versions:
            return
        t = sync_pull_seen.c
        ids = list(versions)
        for part in chunks(ids, 500):
            self._conn.execute(
                delete(sync_pull_seen).where(
                    tuple_(t.destination, t.resource_type, t.remote_id).in_(
                        [(destination, resource_type, i) for i in part]
                    )
                )
            )
        self._conn.execute(
            insert(sync_pull_seen),
            [
                {
                    "destination": destination,
                    "resource_type": resource_type,
                    "remote_id": remote_id,
                    "version_key": key,
                    "outcome": outcome,
                    "seen_at": now,
                }
                for remote_id, (key, outcome) in versions.items()
            ],
        )
