"""A referral from a referring physician becomes a ServiceRequest asking the clinic to evaluate and treat.

Profile: R4 core, http://hl7.org/fhir/StructureDefinition/ServiceRequest (US Core ServiceRequest needs a code
  the record does not carry). status active, intent order, category `referral` in the clinic's local
  CodeSystem (no V/C code in the reference), requester the referring Practitioner, performer the clinic,
  reasonCode the coded reason, subject the Patient, note the referrer's free text.
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept, dt
from mappings.models import Resource, validate
from mappings.organization import organization_reference
from mappings.records import Referral
from mappings.session import indication_concept
from mappings.text import markdown


def referral_dict(r: Referral, ctx: MappingContext) -> dict:
    """The ServiceRequest."""
    out = ids.head(ctx, "referral", profiles.SERVICE_REQUEST, r.id)
    out["status"] = "active"
    out["intent"] = "order"
    out["category"] = [concept([terminology().local("service_request_category", "referral")], ctx.base_url)]
    out["subject"] = ids.reference("patient", r.patient_id)
    out["authoredOn"] = dt(r.authored)
    ctx.check_practitioner(r.practitioner_id)
    out["requester"] = ids.reference("practitioner", r.practitioner_id)
    out["performer"] = [organization_reference(ctx)]
    out["reasonCode"] = [indication_concept(r.reason, ctx)]
    if r.note:
        out["note"] = [{"text": markdown(r.note)}]
    return out


def to_fhir_referral(r: Referral, ctx: MappingContext) -> list[Resource]:
    """Map a referral to its ServiceRequest."""
    return [validate(referral_dict(r, ctx))]
