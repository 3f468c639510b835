"""Scheduled summary work: plain functions returning a report; the scheduler only calls them.

- `scan_changes`: reads the change feed from its own cursor (`summary_cursor`, name `summary-triggers`),
  decides what is due (triggers.py) and records it as `due` in the same transaction that moves the cursor,
  so a crash neither loses a trigger nor records it twice; then prepares what is due.
- `weekly_digest`: at a referrer's `digest_schedule`, a due row per eligible patient, then preparation.
- `purge_history`: hourly, deletes the `skipped` rows older than `summary_skipped_retention_days` (every
  change of a documented patient records a correction; most prepare nothing), keeping the history of every
  document prepared, sent or dead; and the outbox rows that carried a sent version, after
  `sync_sent_retention_days` (retention.py). It runs with or without referrers: rows outlive a
  referrer's removal.
- `summary-delivery` (transport.py): prepared versions handed to the sync outbox and sent.
Referrers come from `app.extensions["horizon.referrers"]` (name -> Referrer), which
referrer_destinations.py fills at app start; with none configured there is nothing but the purge to schedule.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from integration.jobs import JobSpec
from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database
from integration.summaries.delivery_loader import (
    changes_by_patient,
    documented_referrers,
    load_state,
    referred_patients,
)
from integration.summaries.ledger import SummaryLedger
from integration.summaries.prepare import Preparer
from integration.summaries.referrers import Referrer
from integration.summaries.retention import purge_delivered_requests
from integration.summaries.triggers import Due, digest_due, due_summaries

CURSOR = "summary-triggers"
SCAN_INTERVAL_SECONDS = 60
PURGE_BATCH = 1000
PURGE_MAX_BATCHES = 100  # a run deletes at most 100,000 rows; the next hour goes on
DELIVERY_INTERVAL_SECONDS = 30  # hand off and send prepared versions (transport.py)
_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


def configured_referrers(app: Flask) -> Mapping[str, Referrer]:
    return app.extensions.get("horizon.referrers", {})


def preparer_for(app: Flask) -> Preparer:
    return Preparer(
        app.extensions["horizon.db"],
        app.config["HORIZON_SETTINGS"],
        app.extensions["horizon.mapping"],
        configured_referrers(app),
    )


def scan(
    db: Database,
    referrers: Mapping[str, Referrer],
    *,
    batch: int = 1000,
    max_rows: int = 100_000,
    max_seconds: float = 30.0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record the summaries due from the change feed since the cursor (bounded in rows and time)."""
    started, rows, recorded = time.monotonic(), 0, 0
    while rows < max_rows and time.monotonic() - started < max_seconds:
        with db.reader() as conn:
            seen = SummaryLedger(conn).cursor(CURSOR)
            last, changed = changes_by_patient(conn, seen, batch)
            dues: list[Due] = []
            for patient_id, keys in sorted(changed.items()):
                state = load_state(conn, patient_id)
                if state is not None:
                    documented = documented_referrers(conn, patient_id)
                    dues.extend(due_summaries(state, referrers.values(), keys, documented))
        if last == seen:
            break
        at = now or datetime.now(UTC)
        with db.writer() as conn:
            ledger = SummaryLedger(conn)
            if not ledger.advance_cursor(CURSOR, seen, last, at):
                break  # another scanner is ahead; its rows are its own
            for due in dues:
                ledger.add_due(due.patient_id, due.referrer, due.reasons, at)
        rows += last - seen
        recorded += len(dues)
    with db.reader() as conn:
        cursor = SummaryLedger(conn).cursor(CURSOR)
    return {"feed_rows": rows, "due": recorded, "cursor": cursor}


def scan_changes(app: Flask) -> dict[str, Any]:
    """The scheduled trigger scan, then preparation of what is due."""
    report = scan(app.extensions["horizon.db"], configured_referrers(app))
    report["prepared"] = len(preparer_for(app).prepare_due(limit=500))
    return report


def weekly_digest(app: Flask, referrer_name: str, now: datetime | None = None) -> dict[str, Any]:
    """One referrer's digest: every eligible patient gets a due row; preparation sends only what is new."""
    referrer = configured_referrers(app).get(referrer_name)
    if referrer is None:
        return {"referrer": referrer_name, "due": 0, "prepared": 0, "error": "not configured"}
    db = app.extensions["horizon.db"]
    at = now or datetime.now(UTC)
    dues = []
    with db.reader() as conn:
        for patient_id in referred_patients(conn):
            state = load_state(conn, patient_id)
            due = digest_due(state, referrer) if state is not None else None
            if due is not None:
                dues.append(due)
    with db.writer() as conn:
        ledger = SummaryLedger(conn)
        for due in dues:
            ledger.add_due(due.patient_id, due.referrer, due.reasons, at)
    prepared = preparer_for(app).prepare_due(referrer=referrer_name, limit=10_000, now=at)
    return {"referrer": referrer_name, "due": len(dues), "prepared": len(prepared)}


def purge_history(app: Flask, now: datetime | None = None) -> dict[str, Any]:
    """Delete the skipped ledger rows and the delivered request rows past their retention, in short
    transactions (bounded per run); `sync_sent_retention_days` of 0 keeps every request row."""
    settings, db = app.config["HORIZON_SETTINGS"], app.extensions["horizon.db"]
    now = now or datetime.now(UTC)
    removed = 0
    before = now - timedelta(days=settings.summary_skipped_retention_days)
    for _ in range(PURGE_MAX_BATCHES):
        with db.writer() as conn:
            done = SummaryLedger(conn).purge_skipped(before, PURGE_BATCH)
        removed += done
        if done < PURGE_BATCH:
            break
    days = settings.sync_sent_retention_days
    requests = purge_delivered_requests(db, now - timedelta(days=days)) if days > 0 else 0
    if requests:
        with db.writer() as conn:
            AuditRepository(conn).record(
                AuditEntry(
                    action="summary.retention.purge",
                    outcome=200,
                    actor="scheduler",
                    role="system",
                    detail={"delivered_requests": requests, "sent_days": days},
                )
            )
    return {"removed": removed, "delivered_requests": requests}


def summary_job_specs(referrers: Mapping[str, Referrer]) -> list[JobSpec]:
    """The ledger purge hourly; with referrers, the scan every minute and one digest job per referrer with
    a digest schedule (cron in UTC)."""
    purge = JobSpec("summary-ledger-purge", purge_history, "interval", {"hours": 1})
    if not referrers:
        return [purge]
    from integration.summaries.transport import deliver_all  # transport builds on this module's neighbours

    specs = [
        JobSpec("summary-triggers", scan_changes, "interval", {"seconds": SCAN_INTERVAL_SECONDS}),
        purge,
        JobSpec(
            "summary-delivery",
            deliver_all,
            "interval",
            {"seconds": DELIVERY_INTERVAL_SECONDS, "coalesce": True, "max_instances": 1},
        ),
    ]
    for r in referrers.values():
        if r.wants("weekly-digest") and r.digest_schedule:
            fields = dict(zip(_CRON_FIELDS, r.digest_schedule.split(), strict=True))

            def run(app: Flask, name: str = r.name) -> dict[str, Any]:
                return weekly_digest(app, name)

            specs.append(JobSpec(f"summary-digest-{r.name}", run, "cron", fields))
    return specs
