"""Turn due ledger rows into prepared document versions with their payloads (the hand-off to the outbox).

Per (patient, referrer) the documents form sets, one per period start; periods follow each other (each new
summary covers the days since the previous one ended, up to the last day with care recorded). Preparing:
1. every set's latest version is recomputed over its own period; a content hash that moved (a corrected
   record, a late same-day result) gives the next version, which replaces the previous one;
2. if a trigger (not only a correction) is due, the days after the last period get a new set, version 1,
   when anything happened in them (a session that took place, a score, a safety signal).
Rendering (PDF, C-CDA) happens outside the write transaction; the ledger write is one short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from integration.settings import Settings
from integration.store.db import Database
from integration.summaries import delivery_payloads as payloads
from integration.summaries.ccda import consultation_note
from integration.summaries.compute import compute_summary
from integration.summaries.delivery_loader import load_state
from integration.summaries.fhir_document import document_bundle
from integration.summaries.ledger import Entry, NewVersion, NotDue, SummaryLedger, content_hash
from integration.summaries.model import Period, Summary
from integration.summaries.pdf_report import render_pdf
from integration.summaries.referrers import Referrer
from integration.summaries.rules import catalogue
from integration.summaries.service import clinic_of
from integration.summaries.triggers import CORRECTION, ineligible
from mappings.context import MappingContext
from mappings.organization import organization_dict

log = logging.getLogger(__name__)
TOOK_PLACE = ("completed", "stopped", "in-progress")


@dataclass(frozen=True, slots=True)
class Planned:
    """A version to prepare: its summary, place in a set and the head it replaces."""

    summary: Summary
    reasons: tuple[str, ...]
    set_id: str
    number: int
    replaces: Entry | None
    content_hash: str


def latest_day(summary: Summary) -> date | None:
    """The last day with care recorded: a session that took place, a score or a safety signal."""
    days = [s.start.date() for s in summary.sessions if s.status in TOOK_PLACE]
    days += [sc.at.date() for o in summary.outcomes for sc in o.scores if summary.period.contains(sc.at)]
    days += [sig.at.date() for sig in summary.safety_signals if sig.at is not None]
    return max(days, default=None)


def plan_versions(
    patient_id: str,
    referrer: str,
    heads: Sequence[Entry],
    reasons: Sequence[str],
    compute: Callable[[Period], Summary],
    numbered: Mapping[str, int] | None = None,
) -> list[Planned]:
    """The versions due (pure apart from `compute`): superseding ones first, then a new period's.

    `numbered` gives each set's highest version in any state: a version that went dead is never reused
    (and is not replaced: the referrer never had it)."""
    numbered = numbered or {}
    out = []
    for head in heads:
        summary = compute(Period(head.period_start, head.period_end))
        digest = content_hash(summary)
        if digest != head.content_hash:
            assert head.set_id is not None and head.version is not None
            number = max(head.version, numbered.get(head.set_id, 0)) + 1
            out.append(Planned(summary, (CORRECTION,), head.set_id, number, head, digest))
    triggers = tuple(r for r in reasons if r != CORRECTION)
    if not triggers:
        return out
    ends = [h.period_end for h in heads if h.period_end is not None]
    start = max(ends) + timedelta(days=1) if ends else None
    end = latest_day(compute(Period(start, None)))
    if end is None or (start is not None and end < start):
        return out
    summary = compute(Period(start, end))
    set_id = payloads.set_id(patient_id, referrer, start.isoformat() if start else None)
    out.append(Planned(summary, triggers, set_id, numbered.get(set_id, 0) + 1, None, content_hash(summary)))
    return out


def render(
    planned: Planned, resources: Mapping[str, Mapping[str, Any]], base_url: str, referrer: Referrer
) -> NewVersion:
    """The payload of one version for the referrer's channel."""
    replaced = planned.replaces
    slot = payloads.DocumentSlot(
        planned.set_id,
        planned.number,
        replaced.document_id if replaced else None,
        replaced.version if replaced else None,
    )
    bundle = payloads.with_replaces(
        document_bundle(planned.summary, resources, base_url=base_url), slot, base_url
    )
    if referrer.channel == "fhir":
        ccda = consultation_note(planned.summary, resources, slot.cda())
        docref = payloads.document_reference(
            planned.summary, bundle, ccda, render_pdf(planned.summary), slot, base_url
        )
        requests = payloads.fhir_requests(bundle, docref)
    else:
        requests = payloads.webhook_requests(bundle, slot)
    period = planned.summary.period
    return NewVersion(
        reasons=planned.reasons,
        set_id=planned.set_id,
        version=planned.number,
        period_start=period.start,
        period_end=period.end,
        content_hash=planned.content_hash,
        document_id=bundle["entry"][0]["resource"]["id"],
        replaces_pk=planned.replaces.pk if planned.replaces else None,
        channel=referrer.channel,
        payload=orjson.dumps({"channel": referrer.channel, "requests": requests}).decode("utf-8"),
    )


@dataclass(frozen=True, slots=True)
class Preparer:
    """Everything preparation needs from the app."""

    db: Database
    settings: Settings
    ctx: MappingContext
    referrers: Mapping[str, Referrer]

    def versions(
        self, patient_id: str, referrer: Referrer, reasons: Sequence[str], now: datetime
    ) -> tuple[list[NewVersion], str | None]:
        """The versions due for the pair (not recorded), or none and why."""
        with self.db.reader() as conn:
            state = load_state(conn, patient_id)
            ledger = SummaryLedger(conn)
            heads = ledger.heads(patient_id, referrer.name)
            numbered = ledger.numbered(patient_id, referrer.name)
        if state is None:
            return [], "no such patient"
        why = ineligible(state, referrer)
        if why is not None:
            return [], why
        organization = organization_dict(self.ctx)
        resources = [*state.resources, organization]
        index = {f"{r['resourceType']}/{r['id']}": r for r in resources}
        rules = catalogue(self.ctx.base_url)
        clinic = clinic_of(self.settings, organization)

        def compute(period: Period) -> Summary:
            return compute_summary(
                patient_id, resources, period=period, clinic=clinic, catalogue=rules, generated_at=now
            )

        planned = plan_versions(patient_id, referrer.name, heads, reasons, compute, numbered)
        return [render(p, index, self.ctx.base_url, referrer) for p in planned], None

    def prepare(self, due: Entry, now: datetime | None = None) -> list[int]:
        """Prepare one due row; returns the prepared pks ([] when skipped or taken by another preparer)."""
        now = now or datetime.now(UTC)
        referrer = self.referrers.get(due.referrer)
        if referrer is None:
            versions, why = [], "referrer not configured"
        else:
            versions, why = self.versions(due.patient_id, referrer, due.reasons, now)
        try:
            with self.db.writer() as conn:
                ledger = SummaryLedger(conn)
                if why is not None:
                    ledger.skip(due.pk, why, now)
                    return []
                return ledger.record(due.pk, versions, now)
        except (NotDue, IntegrityError):
            # Another preparer got there first; this row is theirs or will be prepared again.
            log.info("summary delivery prepared elsewhere", extra={"delivery": due.pk})
            return []

    def prepare_due(
        self,
        *,
        patient_id: str | None = None,
        referrer: str | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> list[int]:
        """Prepare open due rows (oldest first, at most `limit`); returns the prepared pks."""
        with self.db.reader() as conn:
            due = SummaryLedger(conn).due(patient_id=patient_id, referrer=referrer, limit=limit)
        return [pk for entry in due for pk in self.prepare(entry, now)]
