"""The reads behind delivery decisions: a patient's state (resources + consent) and the change feed."""

from __future__ import annotations

from collections import defaultdict

import orjson
from sqlalchemy import Connection, select

from integration.store.records import ClinicRecordRepository
from integration.store.resources import ResourceRepository
from integration.store.schema import fhir_resource, summary_delivery
from integration.summaries.ledger import LIVE
from integration.summaries.loader import load_patient_resources
from integration.summaries.triggers import PatientState
from mappings.records import Consent


def load_state(conn: Connection, patient_id: str) -> PatientState | None:
    """The patient's live resources and consent; None when the store has no such Patient."""
    resources = load_patient_resources(conn, patient_id)
    if resources is None:
        return None
    patient = next(r for r in resources if r["resourceType"] == "Patient" and r["id"] == patient_id)
    mrn = next(
        (i["value"] for i in patient.get("identifier", []) if i.get("system", "").endswith("/sid/patient")),
        None,
    )
    consent = None
    record = ClinicRecordRepository(conn).get("patient", mrn) if mrn else None
    if record is not None:
        raw = orjson.loads(record.payload).get("consent")
        consent = Consent.from_dict(raw) if raw is not None else None
    return PatientState(patient_id, tuple(resources), consent)


def changes_by_patient(conn: Connection, after_seq: int, limit: int) -> tuple[int, dict[str, set[str]]]:
    """Change-feed rows after `after_seq` (at most `limit`): the last seq read and, per patient, the keys
    (`Type/id`) that changed. Rows of no patient (Practitioners, CodeSystems) are passed over."""
    rows = ResourceRepository(conn).changes_since(after_seq, limit)
    changed: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["patient_id"]:
            changed[str(row["patient_id"])].add(f"{row['resource_type']}/{row['resource_id']}")
    last = int(rows[-1]["seq"]) if rows else after_seq
    return last, dict(changed)


def referred_patients(conn: Connection) -> list[str]:
    """Patients with a referral on file (the only ones any referrer can be due summaries for)."""
    t = fhir_resource.c
    rows = conn.execute(
        select(t.patient_id)
        .where(t.resource_type == "ServiceRequest", t.deleted.is_(False), t.patient_id.is_not(None))
        .distinct()
        .order_by(t.patient_id)
    )
    return [r.patient_id for r in rows]


def documented_referrers(conn: Connection, patient_id: str) -> set[str]:
    """Referrers holding live (prepared or sent) documents about the patient."""
    t = summary_delivery.c
    rows = conn.execute(select(t.referrer).where(t.patient_id == patient_id, t.state.in_(LIVE)).distinct())
    return {r.referrer for r in rows}
