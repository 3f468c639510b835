"""Retention of delivery history: sent outbox rows and finished sync runs are deleted after a while.

What may go, and why it is safe for exactly-once delivery:
- A `sent` outbox row of a resource version that is no longer the resource's current version (a later
  version exists, or the resource is gone from the store), once `sync_sent_retention_days` have passed
  since it was sent. The change feed cannot offer it again: each destination's cursor only moves
  forward past it. A `full` run (`feed.offer_all`) offers current versions only, and finds those by
  the outbox's dedupe key: that is why the row of the current version stays (without it, a full run
  would send the version again), so the outbox keeps one sent row per resource, not one per change.
- Outbox rows of other features (kind `request`, e.g. referrer summaries) stay: their owner reads
  them to settle its own ledger and decides their lifetime.
- Pending and dead rows always stay (undelivered, or waiting for an admin).
- A finished sync run (done, failed, abandoned) after `sync_run_retention_days`, unless it is the
  newest run of its destination (the admin destinations view shows it). Running runs always stay.

Work is done in short batches: candidates are read outside any write transaction, then deleted by
primary key in their own short transaction, so no long lock is held; a run deletes at most
`MAX_BATCHES` batches per table and the next run goes on. Only counts are reported and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import aliased

from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database
from integration.store.schema import fhir_resource, sync_destination, sync_outbox, sync_run
from integration.sync.outbox import SENT
from integration.sync.runs import RUNNING

BATCH = 500
MAX_BATCHES = 200  # per table and run: 100k rows, then the next run goes on


@dataclass(frozen=True)
class RetentionReport:
    sent_rows: int
    runs: int

    def as_dict(self) -> dict[str, int]:
        return {"sent_rows": self.sent_rows, "runs": self.runs}


def purge(
    db: Database,
    now: datetime,
    sent_days: int,
    run_days: int,
    *,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> RetentionReport:
    """Delete what is past its retention (a retention of 0 days or less keeps everything)."""
    sent = _purge_sent(db, now - timedelta(days=sent_days), batch, max_batches) if sent_days > 0 else 0
    runs = _purge_runs(db, now - timedelta(days=run_days), batch, max_batches) if run_days > 0 else 0
    report = RetentionReport(sent, runs)
    if sent or runs:
        with db.writer() as conn:
            AuditRepository(conn).record(
                AuditEntry(
                    action="sync.retention.purge",
                    outcome=200,
                    actor="scheduler",
                    role="system",
                    detail={**report.as_dict(), "sent_days": sent_days, "run_days": run_days},
                )
            )
    return report


def _purge_sent(db: Database, before: datetime, batch: int, max_batches: int) -> int:
    o, r = sync_outbox.c, fhir_resource.c
    current = exists().where(
        r.resource_type == o.resource_type, r.id == o.resource_id, r.version_id == o.version_id
    )
    removed, budget = 0, max_batches
    with db.reader() as conn:
        names = list(conn.execute(select(sync_destination.c.name)).scalars())
    for name in names:  # per destination: the scan follows the (destination, status, pk) index
        after = 0
        while budget > 0:
            budget -= 1
            with db.reader() as conn:
                pks = list(
                    conn.execute(
                        select(o.pk)
                        .where(
                            o.destination == name,
                            o.status == SENT,
                            o.pk > after,
                            o.kind == "resource",
                            o.updated_at < before,
                            ~current,
                        )
                        .order_by(o.pk)
                        .limit(batch)
                    ).scalars()
                )
            if pks:
                with db.writer() as conn:  # re-checked: only rows still sent and superseded go
                    removed += conn.execute(
                        delete(sync_outbox).where(o.pk.in_(pks), o.status == SENT, ~current)
                    ).rowcount
            if len(pks) < batch:
                break
            after = pks[-1]
    return removed


def _purge_runs(db: Database, before: datetime, batch: int, max_batches: int) -> int:
    t = sync_run.c
    newer = aliased(sync_run)
    has_newer = exists().where(newer.c.destination == t.destination, newer.c.started_at > t.started_at)
    removed = 0
    for _ in range(max_batches):
        with db.reader() as conn:
            ids = list(
                conn.execute(
                    select(t.run_id)
                    .where(t.state != RUNNING, t.finished_at < before, has_newer)
                    .order_by(t.finished_at)
                    .limit(batch)
                ).scalars()
            )
        if not ids:
            break
        with db.writer() as conn:
            removed += conn.execute(delete(sync_run).where(t.run_id.in_(ids), t.state != RUNNING)).rowcount
        if len(ids) < batch:
            break
    return removed
