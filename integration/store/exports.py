"""Repository of Bulk Data export jobs and their files: kick-off, claims with a lease, completion, expiry.

A worker claims a job by a conditional update (queued, or running with an expired lease), renews
its lease while it writes, and completes it only while it still holds the claim and the job is
still running, so a cancelled or re-claimed job is never reported complete by a stale worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from integration.store.schema import change_feed, export_file, export_job

ACTIVE = ("queued", "running")


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    client_id: str
    kind: str
    group_id: str | None
    scope_group_id: str | None
    types: str
    since: datetime | None
    output_format: str
    request_url: str
    transaction_time: datetime
    seq_high: int
    status: str
    attempts: int
    worker: str | None
    lease_until: datetime | None
    progress: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None

    @property
    def type_list(self) -> list[str]:
        return self.types.split(",") if self.types else []


@dataclass(frozen=True, slots=True)
class ExportFile:
    name: str
    kind: str  # output, deleted or error
    resource_type: str
    count: int
    size: int


class ExportJobRepository:
    """Reads and writes export jobs on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def change_feed_high(self) -> int:
        """The highest change-feed sequence number committed so far (0 for an empty store)."""
        return int(self._conn.execute(select(func.coalesce(func.max(change_feed.c.seq), 0))).scalar_one())

    def active_for(self, client_id: str) -> ExportJob | None:
        t = export_job.c
        row = self._conn.execute(
            select(export_job).where(t.client_id == client_id, t.status.in_(ACTIVE)).limit(1)
        ).first()
        return ExportJob(*row) if row else None

    def create(self, **values: object) -> None:
        self._conn.execute(insert(export_job).values(status="queued", attempts=0, **values))

    def get(self, job_id: str) -> ExportJob | None:
        row = self._conn.execute(select(export_job).where(export_job.c.id == job_id)).first()
        return ExportJob(*row) if row else None

    def claim(self, job_id: str, worker: str, now: datetime, lease: timedelta) -> bool:
        """Take the job if it is queued or its previous worker's lease ran out (a crash)."""
        t = export_job.c
        result = self._conn.execute(
            update(export_job)
            .where(
                t.id == job_id,
                or_(t.status == "queued", (t.status == "running") & (t.lease_until < now)),
            )
            .values(
                status="running",
                worker=worker,
                lease_until=now + lease,
                attempts=t.attempts + 1,
                progress="started",
                updated_at=now,
            )
        )
        return result.rowcount == 1

    def renew(self, job_id: str, worker: str, now: datetime, lease: timedelta, progress: str) -> bool:
        """Extend the claim and record progress; False when the job was cancelled or taken over."""
        t = export_job.c
        result = self._conn.execute(
            update(export_job)
            .where(t.id == job_id, t.worker == worker, t.status == "running")
            .values(lease_until=now + lease, progress=progress[:100], updated_at=now)
        )
        return result.rowcount == 1

    def complete(
        self, job_id: str, worker: str, files: Sequence[ExportFile], now: datetime, expires_at: datetime
    ) -> bool:
        t = export_job.c
        result = self._conn.execute(
            update(export_job)
            .where(t.id == job_id, t.worker == worker, t.status == "running")
            .values(
                status="complete",
                progress="complete",
                completed_at=now,
                expires_at=expires_at,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return False
        if files:
            self._conn.execute(
                insert(export_file),
                [
                    {
                        "job_id": job_id,
                        "name": f.name,
                        "position": i,
                        "kind": f.kind,
                        "resource_type": f.resource_type,
                        "count": f.count,
                        "size": f.size,
                    }
                    for i, f in enumerate(files)
                ],
            )
        return True

    def release(self, job_id: str, worker: str, now: datetime) -> bool:
        """Give a job back (its process is stopping): queued again, the attempt not counted."""
        t = export_job.c
        result = self._conn.execute(
            update(export_job)
            .where(t.id == job_id, t.worker == worker, t.status == "running")
            .values(
                status="queued",
                worker=None,
                lease_until=None,
                attempts=t.attempts - 1,
                progress=None,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    def fail(self, job_id: str, error: str, now: datetime, worker: str | None = None) -> bool:
        t = export_job.c
        query = update(export_job).where(t.id == job_id, t.status.in_(ACTIVE))
        if worker is not None:
            query = query.where(t.worker == worker)
        result = self._conn.execute(query.values(status="failed", error=error[:1000], updated_at=now))
        return result.rowcount == 1

    def cancel(self, job_id: str, now: datetime) -> None:
        self._conn.execute(
            update(export_job).where(export_job.c.id == job_id).values(status="cancelled", updated_at=now)
        )

    def files(self, job_id: str) -> list[ExportFile]:
        t = export_file.c
        rows = self._conn.execute(
            select(t.name, t.kind, t.resource_type, t.count, t.size)
            .where(t.job_id == job_id)
            .order_by(t.position)
        )
        return [ExportFile(*row) for row in rows]

    def stale(self, now: datetime, queued_grace: timedelta) -> list[str]:
        """Jobs nobody works on: queued past the grace, or running with a lapsed lease (a crash)."""
        t = export_job.c
        rows = self._conn.execute(
            select(t.id).where(
                or_(
                    (t.status == "queued") & (t.updated_at < now - queued_grace),
                    (t.status == "running") & (t.lease_until < now),
                )
            )
        )
        return list(rows.scalars())

    def finished_before(self, now: datetime, keep_failed: timedelta) -> list[str]:
        """Jobs whose files must go: expired complete ones, and cancelled or failed ones after a while."""
        t = export_job.c
        rows = self._conn.execute(
            select(t.id).where(
                or_(
                    (t.status == "complete") & (t.expires_at < now),
                    t.status.in_(("cancelled", "failed")) & (t.updated_at < now - keep_failed),
                )
            )
        )
        return list(rows.scalars())

    def delete(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._conn.execute(delete(export_file).where(export_file.c.job_id.in_(job_ids)))
            self._conn.execute(delete(export_job).where(export_job.c.id.in_(job_ids)))
