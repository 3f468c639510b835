"""A clinic practitioner becomes a US Core Practitioner and a PractitionerRole saying what they do for whom.

Practitioner: http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner (NPI as identifier
  `http://hl7.org/fhir/sid/us-npi`).
PractitionerRole: R4 core, http://hl7.org/fhir/StructureDefinition/PractitionerRole (US Core PractitionerRole
  requires contact details or an Endpoint the record may lack). The role is coded in the clinic's local
  CodeSystem; staff roles link to the clinic Organization, a referrer's practice (free text) is a display-only
  organization reference. Not mapped: `endpoint` (a sync destination name, not clinical data).
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept
from mappings.models import Resource, validate
from mappings.organization import organization_reference
from mappings.records import Practitioner


def practitioner_dict(p: Practitioner, ctx: MappingContext) -> dict:
    """The US Core Practitioner."""
    out = ids.head(ctx, "practitioner", profiles.PRACTITIONER, p.id)
    if p.npi:
        out["identifier"].append({"system": terminology().fhir_systems["npi"], "value": p.npi})
    name: dict = {"family": p.family}
    if p.given:
        name["given"] = list(p.given)
    out["name"] = [name]
    telecom = [
        {"system": s, "value": v, "use": "work"} for s, v in (("phone", p.phone), ("email", p.email)) if v
    ]
    if telecom:
        out["telecom"] = telecom
    return out


def role_dict(p: Practitioner, ctx: MappingContext) -> dict:
    """The practitioner's role at the clinic (or, for a referrer, at their own practice)."""
    out = ids.head(ctx, "practitioner-role", profiles.PRACTITIONER_ROLE, p.id)
    out["active"] = True
    out["practitioner"] = ids.reference("practitioner", p.id)
    if p.role != "referrer":
        out["organization"] = organization_reference(ctx)
    elif p.organization:
        out["organization"] = {"display": p.organization}
    out["code"] = [concept([terminology().local("practitioner_roles", p.role)], ctx.base_url)]
    return out


def practitioner_dicts(p: Practitioner, ctx: MappingContext) -> list[dict]:
    """Practitioner, then PractitionerRole."""
    return [practitioner_dict(p, ctx), role_dict(p, ctx)]


def to_fhir_practitioner(p: Practitioner, ctx: MappingContext) -> list[Resource]:
    """Map a clinic practitioner to Practitioner and PractitionerRole."""
    return [validate(d) for d in practitioner_dicts(p, ctx)]
