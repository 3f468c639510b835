"""A clinic patient becomes a US Core Patient plus one AllergyIntolerance per recorded allergy.

Patient: http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient
AllergyIntolerance: http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance

A screening that found no allergies (`no_known_allergies: true`) becomes the coded negation US Core allows:
AllergyIntolerance.code SNOMED 716186003 "No known allergy (situation)", clinicalStatus active, verification
confirmed (reference 5b). When nothing was recorded, no AllergyIntolerance at all is made (absence of data is
not a finding). Not mapped: `consent` (a sharing policy the sync engine applies, not clinical data) and
`referring_practitioner_id` (the referral's ServiceRequest names the referrer; generalPractitioner would claim
a primary-care role the record does not state).
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.errors import UnknownCodeError
from mappings.fhirtypes import concept, day, text_concept
from mappings.models import Resource, validate
from mappings.organization import address, organization_reference
from mappings.records import Allergy, Patient
from mappings.text import markdown

# Reference header (V): the FHIR URIs of RxNorm and SNOMED CT, for codes the clinic itself supplies.
_SUBSTANCE_SYSTEMS = {
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "snomed": "http://snomed.info/sct",
}


def patient_dict(p: Patient, ctx: MappingContext) -> dict:
    """The US Core Patient."""
    t = terminology()
    out = ids.head(ctx, "patient", profiles.PATIENT, p.id)
    out["identifier"].extend({"system": i.system, "value": i.value} for i in p.identifiers)
    name: dict = {"family": p.family}
    if p.given:
        name["given"] = list(p.given)
    out["name"] = [name]
    telecom = [{"system": s, "value": v} for s, v in (("phone", p.phone), ("email", p.email)) if v]
    if telecom:
        out["telecom"] = telecom
    out["gender"] = t.status("gender", p.sex)
    out["birthDate"] = day(p.birth_date)
    if p.address and (a := address(p.address)):
        out["address"] = [a]
    if p.language:
        out["communication"] = [
            {"language": {"coding": [{"system": t.fhir_systems["bcp47"], "code": p.language}]}}
        ]
    out["managingOrganization"] = organization_reference(ctx)
    return out


def allergy_dict(a: Allergy, p: Patient, ctx: MappingContext) -> dict:
    """One recorded allergy. An uncoded substance stays text only (never guessed into a code)."""
    t = terminology()
    out = ids.head(ctx, "allergy", profiles.ALLERGY, a.id)
    out["clinicalStatus"] = concept(
        [t.fhir("allergy_clinical", t.status("allergy_clinical", a.status))], ctx.base_url
    )
    code: dict = {}
    if a.substance.code and a.substance.system:
        if a.substance.system not in _SUBSTANCE_SYSTEMS:
            raise UnknownCodeError("allergy substance system", a.substance.system)
        code["coding"] = [{"system": _SUBSTANCE_SYSTEMS[a.substance.system], "code": a.substance.code}]
    code["text"] = a.substance.text
    out["code"] = code
    out["patient"] = ids.reference("patient", p.id)
    if a.reaction:
        reaction: dict = {"manifestation": [text_concept(a.reaction)]}
        if a.severity:
            reaction["severity"] = t.status("allergy_reaction_severity", a.severity)
        out["reaction"] = [reaction]
    elif a.severity:  # a severity with no reaction named: keep it visible, do not invent a manifestation
        out["note"] = [{"text": markdown(f"Reaction severity: {a.severity} (reaction not recorded)")}]
    return out


def no_known_allergies_dict(p: Patient, ctx: MappingContext) -> dict:
    """The coded negation for a screening that found no allergies (reference 5b)."""
    t = terminology()
    code, text = t.fixed("no_known_allergy")
    out = ids.head(ctx, "no-known-allergies", profiles.ALLERGY, p.id)
    out["clinicalStatus"] = concept([t.fhir("allergy_clinical", "active")], ctx.base_url)
    out["verificationStatus"] = concept([t.fhir("allergy_verification", "confirmed")], ctx.base_url)
    out["code"] = concept([code], ctx.base_url, text)
    out["patient"] = ids.reference("patient", p.id)
    return out


def patient_dicts(p: Patient, ctx: MappingContext) -> list[dict]:
    """Patient, then its allergies (or the no-known-allergies statement)."""
    out = [patient_dict(p, ctx)]
    out.extend(allergy_dict(a, p, ctx) for a in p.allergies)
    if p.no_known_allergies and not p.allergies:
        out.append(no_known_allergies_dict(p, ctx))
    return out


def to_fhir_patient(p: Patient, ctx: MappingContext) -> list[Resource]:
    """Map a clinic patient to US Core Patient and AllergyIntolerance resources."""
    return [validate(d) for d in patient_dicts(p, ctx)]
