"""When a referrer is due a summary, and why (pure: no I/O).

Input: one patient's live resources (as the mappings store them), the patient's consent (clinic record;
the mappings do not map it), the change-feed keys (`Type/id`) seen since the scan's cursor (None: judge
everything, as an admin trigger does) and the configured referrers. A referrer is considered only when it
is the patient's referrer (the requester of one of the patient's referral ServiceRequests matches its
`practitioner` by clinic id or NPI) and the patient's consent allows sharing with it. Triggers:

- session-completed: a session Procedure that is completed (or stopped: ended early, which the referrer
  needs to know about just as much) changed;
- series-completed: the series CarePlan's planned count of sessions is done (Procedures basedOn it,
  completed or stopped) and one of them changed;
- safety-signal: an active PHQ-9 item-9 Flag (mappings/assessment.py) changed: immediate notice;
- weekly-digest: not change-driven; `digest_due` is asked at the referrer's cron time;
- correction: anything of the patient changed while the referrer holds documents about them: the
  documents are recomputed and those whose content moved are superseded (prepare.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from integration.summaries.referrers import Referrer
from mappings.ids import resource_id
from mappings.records import Consent

Resource = Mapping[str, Any]
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ITEM9_FLAG = "phq9-item9-positive"
DONE = ("completed", "stopped")
CORRECTION = "correction"


@dataclass(frozen=True, slots=True)
class PatientState:
    """What the triggers need to know about one patient."""

    patient_id: str
    resources: tuple[Resource, ...]
    consent: Consent | None  # None: the contract's defaults (share with the referrer, every destination)


@dataclass(frozen=True, slots=True)
class Due:
    """A summary due for (patient, referrer), with the triggers and the resources that fired them."""

    patient_id: str
    referrer: str
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]


def _ref(r: Resource) -> str:
    return f"{r['resourceType']}/{r['id']}"


def consent_allows(consent: Consent | None, referrer: str) -> bool:
    """Sharing with this referrer: `share_with_referrer` true and, when the patient lists destinations,
    the referrer's destination name among them (the contract's defaults allow both)."""
    if consent is None:
        return True
    if not consent.share_with_referrer:
        return False
    return consent.share_with_destinations is None or referrer in consent.share_with_destinations


def is_practitioner(referrer: Referrer, practitioner: Resource) -> bool:
    """Whether the configured `practitioner` (clinic id or NPI) names this Practitioner."""
    if practitioner.get("id") == resource_id("practitioner", referrer.practitioner):
        return True
    return any(
        i.get("system") == NPI_SYSTEM and i.get("value") == referrer.practitioner
        for i in practitioner.get("identifier", [])
    )


def referring_practitioners(resources: Iterable[Resource]) -> list[Resource]:
    """The Practitioners who requested the patient's referrals (ServiceRequest category referral)."""
    items = list(resources)
    index = {_ref(r): r for r in items}
    out = []
    for sr in items:
        if sr["resourceType"] != "ServiceRequest":
            continue
        if not any(
            c.get("code") == "referral" for cat in sr.get("category", []) for c in cat.get("coding", [])
        ):
            continue
        practitioner = index.get(sr.get("requester", {}).get("reference", ""))
        if practitioner is not None:
            out.append(practitioner)
    return out


def ineligible(state: PatientState, referrer: Referrer) -> str | None:
    """Why this referrer may not get this patient's summaries, or None when it may."""
    if not referrer.enabled:
        return "referrer disabled"
    if not any(is_practitioner(referrer, p) for p in referring_practitioners(state.resources)):
        return "not the patient's referrer"
    if not consent_allows(state.consent, referrer.name):
        return "consent does not allow sharing with this referrer"
    return None


def fired(resources: Iterable[Resource], changed: Collection[str] | None) -> dict[str, list[str]]:
    """The change-driven triggers that fire, each with its evidence (`Type/id`)."""
    items = list(resources)

    def new(*refs: str) -> bool:
        return changed is None or any(r in changed for r in refs)

    out: dict[str, list[str]] = {"session-completed": [], "series-completed": [], "safety-signal": []}
    procedures = [p for p in items if p["resourceType"] == "Procedure" and "encounter" in p]
    for proc in procedures:
        if proc.get("status") in DONE and new(_ref(proc), proc["encounter"]["reference"]):
            out["session-completed"].append(_ref(proc))
    for plan in (r for r in items if r["resourceType"] == "CarePlan"):
        planned = next(
            (
                a["detail"]["scheduledTiming"]["repeat"]["count"]
                for a in plan.get("activity", [])
                if a.get("detail", {}).get("scheduledTiming", {}).get("repeat", {}).get("count")
            ),
            None,
        )
        done = [
            p
            for p in procedures
            if p.get("status") in DONE and any(b.get("reference") == _ref(plan) for b in p.get("basedOn", []))
        ]
        if planned is not None and len(done) >= planned and new(_ref(plan), *(_ref(p) for p in done)):
            out["series-completed"].append(_ref(plan))
    for flag in (r for r in items if r["resourceType"] == "Flag"):
        coded = any(c.get("code") == ITEM9_FLAG for c in flag.get("code", {}).get("coding", []))
        if coded and flag.get("status") == "active" and new(_ref(flag)):
            out["safety-signal"].append(_ref(flag))
    return out


def due_summaries(
    state: PatientState,
    referrers: Iterable[Referrer],
    changed: Collection[str] | None,
    documented: Collection[str] = (),
) -> list[Due]:
    """The summaries due for this patient: per eligible referrer, the triggers it subscribes to that fired,
    plus `correction` when something changed and the referrer already holds documents (`documented`)."""
    triggers = fired(state.resources, changed)
    out = []
    for referrer in referrers:
        if ineligible(state, referrer) is not None:
            continue
        reasons = [t for t, evidence in triggers.items() if evidence and referrer.wants(t)]
        evidence = [e for t in reasons for e in triggers[t]]
        if referrer.name in documented and (changed is None or changed):
            reasons.append(CORRECTION)
        if reasons:
            out.append(Due(state.patient_id, referrer.name, tuple(sorted(reasons)), tuple(evidence)))
    return out


def digest_due(state: PatientState, referrer: Referrer) -> Due | None:
    """At the referrer's digest time: due when it subscribes and may receive this patient's summaries (the
    preparation then sends only when something happened since the last summary)."""
    if not referrer.wants("weekly-digest") or ineligible(state, referrer) is not None:
        return None
    return Due(state.patient_id, referrer.name, ("weekly-digest",), ())
