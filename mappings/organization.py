"""The clinic itself: its Organization and the charting-system Device that Provenance names as agent.

Organization: US Core Organization, http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization
Device: R4 core Device, http://hl7.org/fhir/StructureDefinition/Device
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.models import Resource, validate
from mappings.records import Address


def address(a: Address) -> dict:
    """A FHIR Address from a clinic address."""
    out: dict = {}
    if a.line:
        out["line"] = list(a.line)
    for key, value in (
        ("city", a.city),
        ("state", a.state),
        ("postalCode", a.postal_code),
        ("country", a.country),
    ):
        if value:
            out[key] = value
    return out


def organization_dict(ctx: MappingContext) -> dict:
    """The clinic Organization (US Core Organization: identifier with NPI, active, name, telecom, address)."""
    org = ctx.organization
    out = ids.head(ctx, "organization", profiles.ORGANIZATION, org.clinic_id)
    if org.npi:
        out["identifier"].append({"system": terminology().fhir_systems["npi"], "value": org.npi})
    out["active"] = True
    out["name"] = org.name
    if org.phone:
        out["telecom"] = [{"system": "phone", "value": org.phone, "use": "work"}]
    if org.address and (a := address(org.address)):
        out["address"] = [a]
    return out


def organization_reference(ctx: MappingContext) -> dict:
    """A Reference to the clinic Organization (its name is configuration, so it may be shown)."""
    return {**ids.reference("organization", ctx.organization.clinic_id), "display": ctx.organization.name}


def device_dict(ctx: MappingContext) -> dict:
    """The clinic charting system as a Device owned by the clinic."""
    out = ids.head(ctx, "device", profiles.DEVICE, ctx.system_name)
    out["deviceName"] = [{"name": ctx.system_name, "type": "user-friendly-name"}]
    out["owner"] = organization_reference(ctx)
    return out


def to_fhir_clinic(ctx: MappingContext) -> list[Resource]:
    """The clinic Organization and its system Device."""
    return [validate(organization_dict(ctx)), validate(device_dict(ctx))]
