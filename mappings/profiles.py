"""The profile URLs this layer claims in meta.profile, in one place (reference sections 2-5b, 4.3).

Where no profile exists (US Core has no MedicationAdministration, AdverseEvent, Flag profile; US Core
CarePlan, ServiceRequest, Provenance and PractitionerRole need data or codes the clinic record or the
reference lack) the resource claims its R4 core StructureDefinition, so every resource says what it conforms
to.
"""

from __future__ import annotations

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"

PATIENT = US_CORE + "us-core-patient"
ALLERGY = US_CORE + "us-core-allergyintolerance"
PRACTITIONER = US_CORE + "us-core-practitioner"
ORGANIZATION = US_CORE + "us-core-organization"
ENCOUNTER = US_CORE + "us-core-encounter"
PROCEDURE = US_CORE + "us-core-procedure"
CONDITION_ENCOUNTER_DIAGNOSIS = US_CORE + "us-core-condition-encounter-diagnosis"
MEDICATION = US_CORE + "us-core-medication"
QUESTIONNAIRE_RESPONSE = US_CORE + "us-core-questionnaireresponse"
SCREENING_ASSESSMENT = US_CORE + "us-core-observation-screening-assessment"
SDC_QUESTIONNAIRE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"

PRACTITIONER_ROLE = CORE + "PractitionerRole"
DEVICE = CORE + "Device"
CARE_PLAN = CORE + "CarePlan"
MEDICATION_ADMINISTRATION = CORE + "MedicationAdministration"
ADVERSE_EVENT = CORE + "AdverseEvent"
SERVICE_REQUEST = CORE + "ServiceRequest"
PROVENANCE = CORE + "Provenance"
FLAG = CORE + "Flag"
GROUP = CORE + "Group"
CODE_SYSTEM = CORE + "CodeSystem"

# Extensions: HL7 core (reference 4.3) and the clinic's own (under the base URL).
ORDINAL_VALUE = CORE + "ordinalValue"
LOCAL_EXTENSIONS = {
    "assessment-timing": "When an outcome assessment was taken relative to treatment (valueCoding)",
    "dose-per-weight": "A weight-based dose as prescribed, e.g. 0.5 mg/kg (valueQuantity)",
    "series-session": "Which session of its treatment series a procedure is (valuePositiveInt)",
}


def local_extension(base: str, name: str) -> str:
    """The URL of one of the clinic's extensions."""
    if name not in LOCAL_EXTENSIONS:
        raise KeyError(name)
    return f"{base}/StructureDefinition/{name}"
