"""Sync runs: start one per destination at most, feed the outbox, deliver, record the outcome.

Used by the scheduler jobs and the admin endpoints alike. A dry run builds and checks what would be
sent now (pending outbox rows and changes past the cursor) and sends nothing, changing nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from flask import Flask
from sqlalchemy import Connection, select

from integration.settings import Settings
from integration.store.db import Database
from integration.store.schema import change_feed, sync_outbox
from integration.sync import bundle, destinations
from integration.sync.capabilities import choose
from integration.sync.destinations import Destination
from integration.sync.direct import DirectDelivery
from integration.sync.engine import Counts, DeliveryEngine
from integration.sync.feed import FeedReport, advance, offer_all, writes_for
from integration.sync.outbox import OutboxItem
from integration.sync.runs import DONE, FAILED, RunRepository, execute_in_background, execute_now
from integration.sync.state import StateRepository

log = logging.getLogger(__name__)
EXTENSION = "horizon.destinations"
REFERRER_TABLES = "horizon.referrer_tables"
DRY_RUN_LIMIT = 200
DEAD_LETTER_HOOKS = "horizon.dead_letter_hooks"


class DeadLetterHook(Protocol):
    """Another feature's part in retrying a dead letter of a destination it delivers (e.g. referrers)."""

    def requeue(self, conn: Connection, row: dict[str, Any]) -> str | None:
        """In the retry's transaction, after the row went back to pending: None, or why to refuse."""

    def start(self, app: Flask, name: str, actor: str | None) -> None:
        """Deliver the destination now (in the background)."""


def dead_letter_hook(app: Flask, name: str) -> DeadLetterHook | None:
    return app.extensions.get(DEAD_LETTER_HOOKS, {}).get(name)


def load_into(app: Flask, settings: Settings) -> None:
    """Read the destinations file once per app; an invalid file stops the app from starting.

    Referrer tables are kept as written under `horizon.referrer_tables`, for the referrer-summary
    feature to validate (this engine does not deliver them).
    """
    ehr, referrers = destinations.load_all(settings.destinations_file)
    app.extensions[EXTENSION] = {d.name: d for d in ehr}
    app.extensions[REFERRER_TABLES] = referrers


def configured(app: Flask) -> dict[str, Destination]:
    return app.extensions[EXTENSION]


def start(
    db: Database,
    settings: Settings,
    destination: Destination,
    options: dict[str, Any],
    triggered_by: str | None,
) -> tuple[dict[str, Any], bool]:
    """Record a new running run, or return the one already running for the destination."""
    stale = destination.stale_run_seconds(settings.sync_stale_run_seconds)
    with db.writer() as conn:
        return RunRepository(conn).start(destination.name, options, triggered_by, datetime.now(UTC), stale)


def execute(
    db: Database,
    settings: Settings,
    destination: Destination,
    run_id: str,
    options: dict[str, Any],
    engine: DeliveryEngine | None = None,
) -> Counts:
    """Deliver the feed's clear lanes straight (direct.py), feed the outbox with the rest, deliver it;
    the run ends done (even with dead letters) or failed (a crash)."""
    counts = Counts()
    try:
        engine = engine or DeliveryEngine(db, settings, destination)
        patient = options.get("patient")
        if not patient and not options.get("full"):
            DirectDelivery(engine).deliver(run_id, counts)  # the feed's clear lanes, straight
        report = advance(db, destination, run_id)
        if options.get("full"):
            report = offer_all(db, destination, patient, run_id)
        counts.unchanged = report.unchanged
        engine.deliver(run_id, lane=patient, counts=counts, linger=float(options.get("linger", 0)))
    except Exception as exc:
        log.exception("sync run failed", extra={"destination": destination.name})
        counts.errors.append(
            {"at": datetime.now(UTC).isoformat(), "error": f"run failed: {type(exc).__name__}"}
        )
        _finish(db, run_id, FAILED, counts)
        raise
    _finish(db, run_id, DONE, counts)
    return counts


def _finish(db: Database, run_id: str, state: str, counts: Counts) -> None:
    with db.writer() as conn:
        RunRepository(conn).finish(run_id, state, counts.as_dict(), counts.errors, datetime.now(UTC))


def run_now(
    db: Database,
    settings: Settings,
    destination: Destination,
    options: dict[str, Any],
    triggered_by: str | None,
) -> dict[str, Any]:
    """Start and execute a run in this thread (scheduler jobs); returns the run, or the running one."""
    run, created = start(db, settings, destination, options, triggered_by)
    return execute_now(db, run, created, lambda run_id: execute(db, settings, destination, run_id, options))


def run_in_background(
    db: Database,
    settings: Settings,
    destination: Destination,
    options: dict[str, Any],
    triggered_by: str | None,
) -> tuple[dict[str, Any], bool]:
    """Start a run and execute it on a daemon thread (admin triggers answer 202 at once)."""
    run, created = start(db, settings, destination, options, triggered_by)

    def work(run_id: str) -> object:
        return execute(db, settings, destination, run_id, options)

    return execute_in_background(run, created, work, f"sync-{destination.name}")


def dry_run(
    db: Database, settings: Settings, destination: Destination, patient: str | None
) -> dict[str, Any]:
    """What the next run would send (first DRY_RUN_LIMIT writes), built and checked, without sending."""
    engine = DeliveryEngine(db, settings, destination)
    with db.reader() as conn:
        state = StateRepository(conn).get(destination.name)
        o = sync_outbox.c
        query = (
            select(
                o.pk,
                o.lane,
                o.kind,
                o.resource_type,
                o.resource_id,
                o.version_id,
                o.deleted,
                o.patient_id,
                o.method,
                o.path,
                o.body,
                o.content_type,
                o.attempts,
                o.dedupe_key,
            )
            .where(o.destination == destination.name, o.status == "pending")
            .order_by(o.lane, o.pk)
            .limit(DRY_RUN_LIMIT)
        )
        if patient:
            query = query.where(o.lane == patient)
        items = [OutboxItem(*row) for row in conn.execute(query)]
        c = change_feed.c
        feed = [
            dict(r._mapping)
            for r in conn.execute(
                select(c.resource_type, c.resource_id, c.version_id, c.deleted, c.patient_id)
                .where(c.seq > state.cursor_seq)
                .order_by(c.seq)
                .limit(DRY_RUN_LIMIT - len(items))
            )
        ]
        if patient:
            feed = [row for row in feed if row["patient_id"] == patient]
        upcoming = writes_for(conn, destination, feed, FeedReport())
    for n, w in enumerate(upcoming):
        items.append(
            OutboxItem(
                -n - 1,
                w.lane,
                w.kind,
                w.resource_type,
                w.resource_id,
                w.version_id,
                w.deleted,
                w.patient_id,
                None,
                None,
                None,
                None,
                0,
                w.dedupe_key,
            )
        )
    mode, conditional = choose(destination, state.capabilities)
    resources = [i for i in items if i.kind == "resource"]
    writes = engine.sender.load_writes(resources, conditional)
    entries = [writes[i.pk] for i in resources]
    problems = bundle.check(entries)
    bundles = []
    if mode in ("transaction", "batch"):
        for start_at in range(0, len(entries), destination.batch_size):
            part = entries[start_at : start_at + destination.batch_size]
            bundles.append(orjson.loads(bundle.build(part, mode, destination.base_url, conditional)))
    requests_ = (
        [{"method": m, "url": u} for m, u in (bundle.request_of(w, conditional) for w in entries)]
        if mode == "individual"
        else []
    )
    requests_ += [{"method": i.method, "url": i.path} for i in items if i.kind == "request"]
    return {
        "destination": destination.name,
        "mode": mode,
        "conditional": conditional,
        "entries": len(items),
        "bundles": bundles,
        "requests": requests_,
        "problems": problems,
        "truncated": len(items) >= DRY_RUN_LIMIT,
    }
