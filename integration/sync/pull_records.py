"""Turning one page of pulled resources into clinic records for intake, resolving what they name.

A ServiceRequest's patient is linked by the clinic MRN identifier (on the subject reference, or on
the EHR's Patient read through the destination's client); a patient the clinic does not know is never
created, only reported. Its requester becomes a `referrer` practitioner when the clinic lacks one.
A Patient is merged onto the clinic's current record (demographic fields only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from integration.store.db import Database
from integration.store.records import ClinicRecordRepository
from integration.sync.client import FhirClient
from integration.sync.destinations import Destination
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
        self, db: Database, client: FhirClient, destination: Destination, ctx: MappingContext
    ) -> None:
        self.db, self.client, self.destination, self.ctx = db, client, destination, ctx
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
        mrns = {i: inbound.clinic_id(r, self.ctx, "patient") for i, (_, r) in enumerate(items)}
        known = self.current("patient", {m for m in mrns.values() if m})
        for index, (item, resource) in enumerate(items):
            mrn = mrns[index]
            if mrn is None:
                _skip(item, "carries no clinic MRN identifier")
            elif mrn not in known:
                item.state, item.reason = (
                    UNKNOWN_PATIENT,
                    "clinic MRN not known here (patients are never created from an EHR)",
                )
            else:
                try:
                    item.pairs.append(("patient", inbound.merge_demographics(known[mrn], resource)))
                except _MALFORMED as exc:
                    _reject(item, exc)

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


def _skip(item: Item, reason: str) -> None:
    item.state, item.reason = SKIPPED, reason


# A pulled resource is untrusted input: a wrong shape (a string where FHIR has a list, a missing id) is
# that record's rejection, never an error that stops the pull of everything after it.
_MALFORMED = (InboundError, KeyError, TypeError, AttributeError, ValueError)


def _reject(item: Item, exc: Exception) -> None:
    if not isinstance(exc, InboundError):
        exc = InboundError("resource", "malformed", "the resource does not have the shape FHIR R4 gives it")
    item.state, item.reason, item.rule, item.path = QUARANTINED, exc.message, exc.rule, exc.path
