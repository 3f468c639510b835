"""Adverse events seen during a session become AdverseEvent resources (actuality actual).

Profile: R4 core, http://hl7.org/fhir/StructureDefinition/AdverseEvent (no US Core profile exists). `event`:
  the kind in the clinic's local CodeSystem (the reference has no V/C SNOMED code for any kind);
  `severity`/`outcome`: the R4 required code systems adverse-event-severity / adverse-event-outcome (resolving
  -> recovering, not-resolved -> ongoing); `date`: onset; `suspectEntity`: the session's administrations of
  its primary treatment drug (ketamine/esketamine) that were given. R4 AdverseEvent has no note element, so
  the description and the action taken are kept in the narrative (status additional). Seriousness is not
  recorded by the clinic and is not guessed.
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept, dt
from mappings.medication import is_primary
from mappings.models import Resource, validate
from mappings.records import AdverseEvent, Session
from mappings.text import xhtml_div


def adverse_event_dict(e: AdverseEvent, s: Session, ctx: MappingContext) -> dict:
    """One AdverseEvent."""
    t = terminology()
    kind_text, codes = t.adverse_event(e.kind)
    out = ids.head(ctx, "adverse-event", profiles.ADVERSE_EVENT, e.id)
    lines = [f"{kind_text}. Severity: {e.severity}. Onset: {dt(e.onset)}."]
    if e.description:
        lines.append(f"Description: {e.description}")
    if e.action:
        lines.append(f"Action taken: {e.action}")
    if e.outcome:
        lines.append(f"Outcome: {e.outcome}")
    out["text"] = {"status": "additional", "div": xhtml_div(lines)}
    out["actuality"] = "actual"
    text = e.description if e.kind == "other" and e.description else kind_text
    out["event"] = concept(codes, ctx.base_url, text)
    out["subject"] = ids.reference("patient", s.patient_id)
    out["encounter"] = ids.reference("session", s.id)
    out["date"] = dt(e.onset)
    out["severity"] = concept(
        [t.fhir("adverse_event_severity", t.status("adverse_event_severity", e.severity))], ctx.base_url
    )
    if e.outcome:
        out["outcome"] = concept(
            [t.fhir("adverse_event_outcome", t.status("adverse_event_outcome", e.outcome))], ctx.base_url
        )
    suspects = [
        {"instance": ids.reference("medication-administration", m.id)}
        for m in s.medications
        if m.status != "not-done" and is_primary(m)
    ]
    if suspects:
        out["suspectEntity"] = suspects
    return out


def adverse_event_dicts(s: Session, ctx: MappingContext) -> list[dict]:
    """All adverse events of a session."""
    return [adverse_event_dict(e, s, ctx) for e in s.adverse_events]


def to_fhir_adverse_event(e: AdverseEvent, s: Session, ctx: MappingContext) -> list[Resource]:
    """Map one adverse event (with its session for patient, visit and suspect administrations)."""
    return [validate(adverse_event_dict(e, s, ctx))]
