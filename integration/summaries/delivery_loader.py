"""The reads behind delivery decisions: a patient's state (resources + consent) and the change feed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection, select

from integration.store.keys import grouped_chunks
from integration.store.records import ClinicRecordRepository
from integration.store.resources import ResourceRepository
from integration.store.schema import fhir_resource, fhir_resource_version, summary_delivery
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
    (`Type/id`) that changed. Rows of no patient (Practitioners, CodeSystems) are passed over.

    A feed row names only the new version's patient. A resource moved to another patient (a wrong-patient
    correction) is filed under its previous patient as well, so that patient's documents get recomputed and
    superseded without it."""
    rows = ResourceRepository(conn).changes_since(after_seq, limit)
    changed: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["patient_id"]:
            changed[str(row["patient_id"])].add(f"{row['resource_type']}/{row['resource_id']}")
    for previous, key in _moved_from(conn, rows):
        changed[previous].add(key)
    last = int(rows[-1]["seq"]) if rows else after_seq
    return last, dict(changed)


def _moved_from(conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(previous patient, `Type/id`) for the rows whose version before named another patient.

    Primary-key lookups, one query per resource type and chunk of ids (never one per row): `id IN (...)`
    with the previous version numbers wanted; the few extra versions that match are dropped here."""
    wanted = {
        (r["resource_type"], r["resource_id"], r["version_id"] - 1): r["patient_id"]
        for r in rows
        if r["version_id"] > 1
    }
    versions: dict[str, set[int]] = defaultdict(set)
    for resource_type, _, version in wanted:
        versions[resource_type].add(version)
    t = fhir_resource_version.c
    moved = []
    for resource_type, ids in grouped_chunks((k[0], k[1]) for k in wanted):
        found = conn.execute(
            select(t.id, t.version_id, t.patient_id).where(
                t.resource_type == resource_type,
                t.id.in_(ids),
                t.version_id.in_(sorted(versions[resource_type])),
            )
        )
        for row in found:
            key = (resource_type, row.id, row.version_id)
            if key in wanted and row.patient_id and row.patient_id != wanted[key]:
                moved.append((row.patient_id, f"{resource_type}/{row.id}"))
    return moved


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
