"""Retention of delivered summary requests: the outbox rows that carried a sent document go after a while.

A prepared version is handed to the sync outbox as request rows holding the whole payload (the document
Bundle, the C-CDA and the PDF: PHI, and the bulk of the database over time). Sync retention leaves request
rows to their owner (integration/sync/retention.py); this is the owner's rule. Once the ledger has
settled the version as `sent`, nothing reads its rows again: the ledger keeps the version's payload,
hash and set/version numbers (what supersession and "send once per content" need), a second hand-off
is refused by the ledger's conditional `queued_at` update, and an admin retry only concerns dead rows.
So a `sent` request row whose ledger version is `sent` is deleted once `sync_sent_retention_days` have
passed since it was sent. Rows of a version still in flight or dead stay (settle and retry read them),
as do rows whose version is unknown (never guess about someone else's row).

Short batches as in sync retention: candidates read outside a write transaction, deleted by primary key
in their own short transaction with the conditions checked again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from integration.store.db import Database
from integration.store.schema import summary_delivery, sync_destination, sync_outbox
from integration.summaries.handoff import KEY_PREFIX, ledger_pk
from integration.sync.outbox import SENT

BATCH = 500
MAX_BATCHES = 200


def purge_delivered_requests(
    db: Database, before: datetime, *, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> int:
    """Delete sent summary request rows, sent before `before`, of versions the ledger records as sent."""
    o, s = sync_outbox.c, summary_delivery.c
    with db.reader() as conn:  # a sent row had a delivery run, which made its destination's state row
        referrers = list(conn.execute(select(sync_destination.c.name)).scalars())
    removed, budget = 0, max_batches
    for name in referrers:  # per destination: the scan follows the (destination, status, pk) index
        after = 0
        while budget > 0:
            budget -= 1
            with db.reader() as conn:
                rows = conn.execute(
                    select(o.pk, o.dedupe_key)
                    .where(
                        o.destination == name,
                        o.status == SENT,
                        o.pk > after,
                        o.kind == "request",
                        o.updated_at < before,
                        o.dedupe_key.startswith(KEY_PREFIX, autoescape=True),
                    )
                    .order_by(o.pk)
                    .limit(batch)
                ).all()
                versions = {pk for r in rows if (pk := ledger_pk(r.dedupe_key)) is not None}
                settled = set(
                    conn.execute(
                        select(s.pk).where(s.pk.in_(versions), s.referrer == name, s.state == "sent")
                    ).scalars()
                )
            doomed = [r.pk for r in rows if ledger_pk(r.dedupe_key) in settled]
            if doomed:
                with db.writer() as conn:  # re-checked: only rows still sent go
                    removed += conn.execute(
                        delete(sync_outbox).where(o.pk.in_(doomed), o.status == SENT, o.kind == "request")
                    ).rowcount
            if len(rows) < batch:
                break
            after = rows[-1].pk
    return removed
