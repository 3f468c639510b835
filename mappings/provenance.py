"""Provenance for everything one session produced: which resources, when, and from which system.

Profile: R4 core, http://hl7.org/fhir/StructureDefinition/Provenance (US Core Provenance's agent slices need
  codes the reference does not list). `target`: every resource of the session (references by deterministic
  id); `recorded`: the latest time the record itself states (session end, readings, doses, assessments,
  adverse events), so the same record always gives the same bytes (the store keeps the real receive time in
  meta.lastUpdated); agents: the clinic charting system (a Device, on behalf of the clinic) and the attending
  physician as author (v3-ParticipationType AUT).
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept, dt
from mappings.models import Resource, validate
from mappings.organization import organization_reference
from mappings.records import Session


def latest(s: Session) -> str:
    """The latest instant the session record states."""
    times = [s.start, *(t for t in (s.end,) if t is not None)]
    for m in s.medications:
        times.append(m.end or m.start)
    times.extend(v.taken_at for v in s.vitals)
    times.extend(a.authored for a in s.assessments)
    times.extend(e.onset for e in s.adverse_events)
    return dt(max(times))


def provenance_dict(s: Session, resources: list[dict], ctx: MappingContext) -> dict:
    """The session's Provenance over `resources` (all its other resources)."""
    out = ids.head(ctx, "provenance", profiles.PROVENANCE, s.id)
    out["target"] = [{"reference": f"{r['resourceType']}/{r['id']}"} for r in resources]
    out["recorded"] = latest(s)
    org = organization_reference(ctx)
    out["agent"] = [
        {"who": ids.reference("device", ctx.system_name), "onBehalfOf": org},
        {
            "type": concept([terminology().fhir("participation_type", "AUT")], ctx.base_url),
            "who": ids.reference("practitioner", s.attending_id),
            "onBehalfOf": org,
        },
    ]
    return out


def to_fhir_provenance(s: Session, resources: list[dict], ctx: MappingContext) -> list[Resource]:
    """Map a session's Provenance."""
    return [validate(provenance_dict(s, resources, ctx))]
