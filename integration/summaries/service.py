"""Load, compute and render one patient's summary: the thin I/O layer between the store and the pure parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from integration.settings import Settings
from integration.store.db import Database
from integration.summaries.compute import compute_summary
from integration.summaries.loader import load_patient_resources
from integration.summaries.model import Clinic, Period, Summary
from integration.summaries.rules import catalogue
from mappings.context import MappingContext
from mappings.organization import organization_dict


@dataclass(frozen=True, slots=True)
class SummaryInput:
    """A computed summary with the resources behind it (keyed `Type/id`), ready for any format."""

    summary: Summary
    resources: dict[str, dict[str, Any]]
    base_url: str


def clinic_of(settings: Settings, organization: dict[str, Any]) -> Clinic:
    return Clinic(
        name=settings.clinic_name,
        phone=settings.clinic_phone or None,
        organization_reference=f"Organization/{organization['id']}",
    )


def build(
    db: Database,
    settings: Settings,
    ctx: MappingContext,
    patient_id: str,
    period: Period,
    now: datetime | None = None,
) -> SummaryInput | None:
    """The summary of one patient, or None when the store has no such patient."""
    with db.reader() as conn:
        resources = load_patient_resources(conn, patient_id)
    if resources is None:
        return None
    organization = organization_dict(ctx)
    resources.append(organization)
    summary = compute_summary(
        patient_id,
        resources,
        period=period,
        clinic=clinic_of(settings, organization),
        catalogue=catalogue(ctx.base_url),
        generated_at=now or datetime.now(UTC),
    )
    return SummaryInput(summary, {f"{r['resourceType']}/{r['id']}": r for r in resources}, ctx.base_url)
