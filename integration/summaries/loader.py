"""Read one patient's stored FHIR resources (and the Practitioners they reference) for the summary."""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, select

from integration.store.schema import fhir_resource


def load_patient_resources(conn: Connection, patient_id: str) -> list[dict] | None:
    """The patient's live resources and the Practitioners they reference; None: no such patient."""
    t = fhir_resource.c
    rows = conn.execute(
        select(t.content)
        .where(t.patient_id == patient_id, t.deleted.is_(False))
        .order_by(t.resource_type, t.id)
    ).scalars()
    resources = [orjson.loads(content) for content in rows if content]
    if not any(r["resourceType"] == "Patient" and r["id"] == patient_id for r in resources):
        return None
    wanted = sorted(_practitioner_ids(resources))
    if wanted:
        rows = conn.execute(
            select(t.content).where(t.resource_type == "Practitioner", t.id.in_(wanted), t.deleted.is_(False))
        ).scalars()
        resources.extend(orjson.loads(content) for content in rows if content)
    return resources


def _practitioner_ids(resources: list[dict]) -> set[str]:
    """Every `Practitioner/<id>` reference anywhere in the resources."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref.startswith("Practitioner/"):
                found.add(ref.removeprefix("Practitioner/"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(resources)
    return found
