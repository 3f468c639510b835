"""The R4B model classes this layer emits, and the one place a built resource is validated."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.group import Group
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest

Resource = DomainResource

MODELS: dict[str, type[DomainResource]] = {
    m.__name__: m
    for m in (
        AdverseEvent,
        AllergyIntolerance,
        CarePlan,
        CodeSystem,
        Condition,
        Device,
        Encounter,
        Flag,
        Group,
        Medication,
        MedicationAdministration,
        Observation,
        Organization,
        Patient,
        Practitioner,
        PractitionerRole,
        Procedure,
        Provenance,
        Questionnaire,
        QuestionnaireResponse,
        ServiceRequest,
    )
}


def validate(resource: dict[str, Any]) -> Resource:
    """Validate one built resource dict with its R4B model (the only validation on the way in)."""
    return MODELS[resource["resourceType"]].model_validate(resource)
