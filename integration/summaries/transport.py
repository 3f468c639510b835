"""Sending prepared summaries with the sync engine: hand-off to the outbox, delivery, the ledger outcome.

One delivery of a referrer (`deliver`, run by the `summary-delivery` job and after an admin retry):
1. hand off each prepared version (handoff.py), after checking again that the patient's consent still
   allows it and the channel is still the one it was prepared for (otherwise the version is `dead` with
   the reason, and the next trigger covers its days again);
2. deliver with a `DeliveryEngine` for the referrer's Destination (referrer_destinations.py) under a sync
   run, so pause, circuit breaker, retry with backoff / Retry-After, dead letters and one-run-at-a-time
   hold exactly as for EHR sync; webhook rows are signed when sent;
3. settle: versions whose outbox rows are all sent become `sent`, those with a dead row `dead`; each
   outcome is audited (`summary.delivery.sent|dead`, the patient, the ledger entry) in the same
   transaction. A disabled referrer is not delivered (its versions wait).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, current_app
from sqlalchemy import Connection

from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database
from integration.summaries.delivery_loader import load_state
from integration.summaries.delivery_payloads import FHIR_JSON
from integration.summaries.handoff import MAX_REQUESTS, Handoff, dedupe_key, ledger_pk
from integration.summaries.ledger import Entry
from integration.summaries.referrer_destinations import (
    REFERRERS,
    WEBHOOK_SIGNER,
    load_into,
    missing_secret,
    signers_for,
)
from integration.summaries.referrers import Referrer
from integration.summaries.triggers import ineligible
from integration.sync import service
from integration.sync.engine import Counts, DeliveryEngine
from integration.sync.outbox import OutboxWrite
from integration.sync.runs import DONE, FAILED, RunRepository

log = logging.getLogger(__name__)
BATCH = 500


def outbox_writes(entry: Entry, referrer: Referrer) -> list[OutboxWrite]:
    """The version's stored requests as outbox rows (paths relative to the referrer's URL)."""
    payload = orjson.loads(entry.payload or "{}")
    requests_ = payload.get("requests", [])
    if not 0 < len(requests_) <= MAX_REQUESTS:
        raise ValueError(f"summary delivery {entry.pk}: {len(requests_)} requests in its payload")
    out = []
    for index, request in enumerate(requests_):
        headers = dict(request["headers"])
        content_type = headers.pop("Content-Type", FHIR_JSON)
        out.append(
            OutboxWrite.request(
                lane=entry.patient_id,
                dedupe_key=dedupe_key(entry.pk, index),
                method=request["method"],
                path=request["path"],
                body=request["body"],
                content_type=content_type,
                patient_id=entry.patient_id,
                headers=headers,
                signer=WEBHOOK_SIGNER if referrer.channel == "webhook" else None,
            )
        )
    return out


def _audit(
    conn: Connection, action: str, entry: Entry, outcome: int, actor: str | None, **detail: Any
) -> None:
    AuditRepository(conn).record(
        AuditEntry(
            action=action,
            outcome=outcome,
            actor=actor,
            role="system",
            patient_id=entry.patient_id,
            entity=f"SummaryDelivery/{entry.pk}",
            detail={"referrer": entry.referrer, "set_id": entry.set_id, "version": entry.version, **detail},
        )
    )


def hand_off(db: Database, referrer: Referrer, actor: str | None, now: datetime) -> dict[str, int]:
    """Enqueue the referrer's prepared versions (each in its own short transaction)."""
    queued = withheld = 0
    with db.reader() as conn:
        waiting = Handoff(conn).waiting(referrer.name, BATCH)
    for entry in waiting:
        with db.reader() as conn:
            state = load_state(conn, entry.patient_id)
        why = "no such patient" if state is None else ineligible(state, referrer)
        if why is None and entry.channel != referrer.channel:
            why = f"prepared for channel {entry.channel}; the referrer now uses {referrer.channel}"
        with db.writer() as conn:
            handoff = Handoff(conn)
            if why is not None:
                if handoff.ledger.mark_dead(entry.pk, f"not sent: {why}", now):
                    _audit(conn, "summary.delivery.withheld", entry, 403, actor, reason=why)
                    withheld += 1
            elif handoff.hand_off(entry, outbox_writes(entry, referrer), now):
                queued += 1
    return {"queued": queued, "withheld": withheld}


def settle(db: Database, referrer: str, actor: str | None, now: datetime) -> dict[str, int]:
    """Record in the ledger what the outbox says about the versions in flight."""
    sent = dead = 0
    with db.writer() as conn:
        handoff = Handoff(conn)
        flying = handoff.in_flight(referrer, BATCH)
        rows = handoff.outbox_rows(referrer, [e.pk for e in flying])
        for entry in flying:
            outcome = handoff.outcome(rows.get(entry.pk, []))
            if outcome is None:
                continue
            state, why = outcome
            last = rows[entry.pk][-1]["last_status"]
            if state == "sent" and handoff.ledger.mark_sent(entry.pk, now):
                _audit(conn, "summary.delivery.sent", entry, last or 200, actor, channel=entry.channel)
                sent += 1
            elif state == "dead" and handoff.ledger.mark_dead(entry.pk, str(why), now):
                _audit(conn, "summary.delivery.dead", entry, last or 502, actor, channel=entry.channel)
                dead += 1
    return {"sent": sent, "dead": dead}


def deliver(
    app: Flask, name: str, triggered_by: str | None = "scheduler", linger: float = 0.0
) -> dict[str, Any]:
    """Hand off, deliver and settle one referrer's summaries; returns a loggable report (no PHI)."""
    referrer = app.extensions.get(REFERRERS, {}).get(name)
    destination = service.configured(app).get(name)
    if referrer is None or destination is None:
        return {"referrer": name, "error": "not configured"}
    if not referrer.enabled:
        return {"referrer": name, "skipped": "disabled"}
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    report: dict[str, Any] = {"referrer": name, **hand_off(db, referrer, triggered_by, datetime.now(UTC))}
    problem = missing_secret(referrer)
    if problem is not None:
        log.warning("summary delivery held: webhook secret missing", extra={"destination": name})
        return {**report, "error": problem}
    run, created = service.start(db, settings, destination, {"summaries": True}, triggered_by)
    report["run_id"] = run["run_id"]
    if created:
        counts, state = Counts(), FAILED
        try:
            engine = DeliveryEngine(db, settings, destination, signers=signers_for(referrer))
            engine.deliver(run["run_id"], counts=counts, linger=linger)
            state = DONE
        finally:
            with db.writer() as conn:
                RunRepository(conn).finish(
                    run["run_id"], state, counts.as_dict(), counts.errors, datetime.now(UTC)
                )
        report["counts"] = counts.as_dict()
    report.update(settle(db, name, triggered_by, datetime.now(UTC)))
    return report


def deliver_all(app: Flask) -> dict[str, Any]:
    """The scheduled delivery of every enabled referrer."""
    return {"referrers": [deliver(app, name) for name in sorted(app.extensions.get(REFERRERS, {}))]}


class DeadLetterHook:
    """How the admin dead-letter retry treats a referrer's outbox rows (registered per referrer name)."""

    def requeue(self, conn: Connection, row: dict[str, Any]) -> str | None:
        """In the retry's transaction, after the row went back to pending: the version is in flight
        again, or the reason to refuse (then the caller rolls back)."""
        pk = ledger_pk(str(row["dedupe_key"]))
        if pk is None:
            return None
        handoff = Handoff(conn)
        entry = handoff.ledger.get(pk)
        if entry is None:
            return None
        later = handoff.superseded_by(entry)
        if later is not None:
            return (
                f"summary version {entry.version} was superseded by version {later} of its document; "
                "retrying it would send stale content"
            )
        why = self._withheld(conn, entry, str(row["destination"]))
        if why is not None:  # consent or the referral may have changed since the version went dead
            return f"summary not sent: {why}"
        handoff.back_in_flight(pk)
        return None

    @staticmethod
    def _withheld(conn: Connection, entry: Entry, name: str) -> str | None:
        referrer = current_app.extensions.get(REFERRERS, {}).get(name)
        if referrer is None:
            return "the referrer is no longer configured"
        state = load_state(conn, entry.patient_id)
        why = "no such patient" if state is None else ineligible(state, referrer)
        if why is None and entry.channel != referrer.channel:
            why = f"prepared for channel {entry.channel}; the referrer now uses {referrer.channel}"
        return why

    def start(self, app: Flask, name: str, actor: str | None) -> None:
        """Deliver the referrer now, on a daemon thread (the admin answer does not wait)."""
        real = getattr(app, "_get_current_object", lambda: app)()  # not the request's proxy

        def work() -> None:
            try:
                deliver(real, name, actor)
            except Exception:
                log.exception("summary delivery after a retry failed", extra={"destination": name})

        threading.Thread(target=work, name=f"summary-delivery-{name}", daemon=True).start()


def install(app: Flask, source: str) -> None:
    """At app start: referrers parsed into destinations, and the dead-letter retry told about them."""
    load_into(app, source)
    hooks = app.extensions.setdefault(service.DEAD_LETTER_HOOKS, {})
    for name in app.extensions[REFERRERS]:
        hooks[name] = DeadLetterHook()
