"""Turning one page of pulled resources into clinic records for intake, resolving what they name.

A ServiceRequest's patient is linked by the clinic MRN identifier (on the subject reference, or on
the EHR's Patient read through the destination's client); a patient the clinic does not know is never
created, only reported. Its requester becomes a `referrer` practitioner when the clinic lacks one.
A Patient is merged onto the clinic's current record (demographic fields only), and only when it is
the EHR Patient linked to that clinic patient on this destination (table `ehr_patient_link`):

- it must carry exactly one clinic MRN identifier (`{clinic_base_url}/sid/patient`, our own system:
  the EHR got it from us) naming a patient the clinic has, and a valid FHIR id;
- the first such Patient links its EHR id to that MRN (audited `sync.pull.link`); from then on only
  that EHR Patient may update that patient, and it may not claim another MRN. Another EHR Patient
  carrying the same MRN (a duplicate registration, a merge gone wrong, or someone else's MRN typed
  in) is rejected with rule `ehr-patient-link`, listed on the run and audited `sync.pull.reject`,
  and nothing of the clinic's record changes; so is a linked EHR Patient that now carries another
  MRN. Two unlinked EHR Patients claiming one MRN in the same page link neither: which one is right
  is for an admin to decide: `flask --app wsgi sync unlink` removes a wrong link, and a full pull
  then reads the rejected versions again.
- A link is made on identifiers alone, before intake judges the demographics: a rejected update
  does not undo it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database
from integration.store.records import ClinicRecordRepository
from integration.sync.client import FhirClient
from integration.sync.destinations import Destination
from integration.sync.patient_links import PatientLinkRepository
from mappings import MappingContext, inbound
from mappings.inbound import InboundError

# What happened to one pulled resource, before intake has its say.
SKIPPED, UNKNOWN_PATIENT, QUARANTINED, TO_INTAKE = "skipped", "unknown-patient", "rejected", "intake"


@dataclass
class Item:
    """One pulled resource: its reference on the EHR, version key, and what became of it."""

    ref: str
    version_key: str
    state: str = TO_INTAKE
    reason: str = ""  # for skipped / unknown-patient / rejected: why (no PHI)
    rule: str = ""
    path: str = ""
    pairs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, record) for intake


class PageResolver:
    """Resolves the references of pulled resources; caches EHR reads for the whole run."""

    def __init__(
        self,
        db: Database,
        client: FhirClient,
        destination: Destination,
        ctx: MappingContext,
        actor: str | None = None,
    ) -> None:
        self.db, self.client, self.destination, self.ctx = db, client, destination, ctx
        self.actor = actor
        self._reads: dict[str, dict[str, Any] | None] = {}

    def read(self, reference: object) -> dict[str, Any] | None:
        """A referenced resource on the destination (its base URL only), or None when unreadable."""
        parts = inbound.relative_reference(reference, self.destination.base_url)
        if parts is None:
            return None
        key = "/".join(parts)
        if key not in self._reads:
            answer = self.client.request("GET", key)
            body = answer.json() if answer.status == 200 else None
            ok = isinstance(body, dict) and body.get("resourceType") == parts[0]
            self._reads[key] = body if ok else None  # type: ignore[assignment]
        return self._reads[key]

    def current(self, kind: str, clinic_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The clinic's current records of one kind, by id (only those that exist)."""
        out: dict[str, dict[str, Any]] = {}
        with self.db.reader() as conn:
            repo = ClinicRecordRepository(conn)
            for clinic_id in clinic_ids:
                stored = repo.get(kind, clinic_id)
                if stored is not None:
                    out[clinic_id] = orjson.loads(stored.payload)
        return out

    def exists(self, kind: str, clinic_ids: set[str]) -> set[str]:
        with self.db.reader() as conn:
            found = ClinicRecordRepository(conn).existing((kind, i) for i in clinic_ids)
        return {i for _, i in found}

    # --- Patient -------------------------------------------------------------------------------
    def patients(self, items: list[tuple[Item, dict[str, Any]]]) -> None:
        candidates: list[tuple[Item, dict[str, Any], str, str]] = []
        mrns = [inbound.clinic_ids(r, self.ctx, "patient") for _, r in items]
        known = self.current("patient", {m[0] for m in mrns if len(m) == 1})
        for (item, resource), carried in zip(items, mrns, strict=True):
            ehr_id = inbound.resource_id_of(resource)
            if not carried:
                _skip(item, "carries no clinic MRN identifier")
            elif ehr_id is None:
                _reject(item, InboundError("Patient.id", "malformed", "must be a FHIR id"))
            elif len(carried) > 1:
                _reject(item, _link_error("carries more than one clinic MRN; which patient it is is unclear"))
            elif carried[0] not in known:
                item.state, item.reason = (
                    UNKNOWN_PATIENT,
                    "clinic MRN not known here (patients are never created from an EHR)",
                )
            else:
                candidates.append((item, resource, carried[0], ehr_id))
        for item, resource, mrn in self._linked(candidates):
            try:
                item.pairs.append(("patient", inbound.merge_demographics(known[mrn], resource)))
            except _MALFORMED as exc:
                _reject(item, exc)

    def _linked(
        self, candidates: list[tuple[Item, dict[str, Any], str, str]]
    ) -> list[tuple[Item, dict[str, Any], str]]:
        """Those whose EHR Patient is (or now becomes) the one linked to their MRN; the rest are rejected."""
        if not candidates:
            return []
        claims: dict[str, set[str]] = {}
        for _, _, mrn, ehr_id in candidates:
            claims.setdefault(mrn, set()).add(ehr_id)
        name, now = self.destination.name, datetime.now(UTC)
        out = []
        with self.db.writer() as conn:
            links = PatientLinkRepository(conn)
            by_mrn, by_ehr = links.find(name, claims, (c[3] for c in candidates))
            for item, resource, mrn, ehr_id in candidates:
                linked = by_mrn.get(mrn)
                if linked == ehr_id:
                    out.append((item, resource, mrn))
                elif ehr_id in by_ehr:
                    _reject(item, _link_error("this EHR Patient is linked to another clinic patient"))
                elif linked is not None:
                    _reject(item, _link_error("its clinic MRN is linked to another EHR Patient here"))
                elif len(claims[mrn]) > 1:
                    _reject(item, _link_error("several EHR Patients claim its clinic MRN; none is linked"))
                elif links.link(name, mrn, ehr_id, now):
                    by_mrn[mrn], by_ehr[ehr_id] = ehr_id, mrn
                    AuditRepository(conn).record(
                        AuditEntry(
                            action="sync.pull.link",
                            outcome=201,
                            actor=self.actor,
                            role="system",
                            patient_id=mrn,
                            entity=f"{name}/Patient/{ehr_id}"[:200],
                        )
                    )
                    out.append((item, resource, mrn))
                else:  # linked by another pull meanwhile (one pull per destination runs at a time)
                    _reject(item, _link_error("its clinic MRN was linked meanwhile by another pull"))
        return out

    # --- ServiceRequest ------------------------------------------------------------------------
    def referrals(self, items: list[tuple[Item, dict[str, Any]]]) -> None:
        pull = self.destination.pull
        assert pull is not None
        linked: list[tuple[Item, dict[str, Any], str, dict[str, Any] | None]] = []
        for item, sr in items:
            if inbound.clinic_id(sr, self.ctx, "referral") is not None:
                _skip(item, "one of the clinic's own referrals (sent by this service)")
            elif not inbound.addressed_to_clinic(
                sr, self.destination.base_url, pull.clinic_references, pull.clinic_identifiers
            ):
                _skip(item, "not addressed to the clinic")
            elif sr.get("status") != inbound.ACTIVE_REFERRAL:
                _skip(item, f"status {str(sr.get('status'))[:20]!r}, not active")
            else:
                mrn = self._patient_of(sr)
                if mrn is None:
                    item.state, item.reason = UNKNOWN_PATIENT, "its subject carries no clinic MRN"
                else:
                    linked.append((item, sr, mrn, self.read(sr.get("requester"))))
        known = self.exists("patient", {mrn for _, _, mrn, _ in linked})
        practitioners: dict[str, dict[str, Any]] = {}
        for item, sr, mrn, requester in linked:
            if mrn not in known:
                item.state, item.reason = (
                    UNKNOWN_PATIENT,
                    "clinic MRN not known here (patients are never created from an EHR)",
                )
                continue
            try:
                if requester is None or requester.get("resourceType") != "Practitioner":
                    raise InboundError(
                        "ServiceRequest.requester",
                        "reference",
                        "must reference a Practitioner readable on the EHR",
                    )
                pid = inbound.practitioner_id(requester, self.ctx)
                practitioners[pid] = requester
                record = inbound.referral_record(
                    sr, destination=self.destination.name, patient_id=mrn, practitioner_id=pid
                )
            except _MALFORMED as exc:
                _reject(item, exc)
                continue
            item.pairs.append(("referral", record))
        existing = self.exists("practitioner", set(practitioners))
        for item, *_ in linked:
            if item.state != TO_INTAKE:
                continue
            pid = item.pairs[0][1]["practitioner_id"]
            if pid not in existing:
                try:
                    item.pairs.insert(
                        0, ("practitioner", inbound.practitioner_record(practitioners[pid], self.ctx))
                    )
                except _MALFORMED as exc:
                    item.pairs.clear()
                    _reject(item, exc)

    def _patient_of(self, sr: dict[str, Any]) -> str | None:
        subject = sr.get("subject")
        if isinstance(subject, dict) and isinstance(subject.get("identifier"), dict):
            ident = subject["identifier"]
            if ident.get("system") == self.ctx.sid("patient") and isinstance(ident.get("value"), str):
                return ident["value"]
        patient = self.read(subject)
        return inbound.clinic_id(patient, self.ctx, "patient") if patient else None


def _link_error(message: str) -> InboundError:
    return InboundError("Patient.identifier", "ehr-patient-link", message)


def _skip(item: Item, reason: str) -> None:
    item.state, item.reason = SKIPPED, reason


# A pulled resource is untrusted input: a wrong shape (a string where FHIR has a list, a missing id) is
# that record's rejection, never an error that stops the pull of everything after it.
_MALFORMED = (InboundError, KeyError, TypeError, AttributeError, ValueError)


def _reject(item: Item, exc: Exception) -> None:
    if not isinstance(exc, InboundError):
        exc = InboundError("resource", "malformed", "the resource does not have the shape FHIR R4 gives it")
    item.state, item.reason, item.rule, item.path = QUARANTINED, exc.message, exc.rule, exc.path
