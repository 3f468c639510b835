"""An infusion session becomes its visit, therapy, indication and series plan, plus all its children.

An infusion session becomes the visit (Encounter), the therapy (Procedure), its indication (Condition), the
series plan (CarePlan) and, through the child modules, everything recorded during the visit.

Encounter: http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter (class AMB, type SNOMED
  308335008)
Procedure: http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure (SNOMED 14152002 IV infusion, or
  18629005 drug administration when nothing in the session went IV, e.g. intranasal esketamine)
Condition: http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis
CarePlan: R4 core, http://hl7.org/fhir/StructureDefinition/CarePlan (US Core CarePlan needs an assess-plan
  category the reference does not list)

Status (statuses.json): `stopped` = ended early: Encounter finished, Procedure stopped with statusReason =
stop_reason; `cancelled`: Encounter cancelled, Procedure not-done. The CarePlan is written by every session of
its series, so it holds only what all of them agree on (series number, planned count): done sessions are the
Procedures whose basedOn names it (search Procedure?based-on=).
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept, period
from mappings.models import Resource, validate
from mappings.organization import organization_reference
from mappings.records import Code, Session
from mappings.text import markdown


def indication_concept(c: Code, ctx: MappingContext) -> dict:
    """A coded indication/reason, plus its ICD-10-CM/SNOMED translation where the reference has one."""
    t = terminology()
    system = t.condition_system(c.system)
    # ICD-10-CM codes are upper case (ingest accepts either case). The clinic's display goes to text only:
    # Coding.display belongs to the code system, not to the sender.
    code = c.code.upper() if system == t.condition_systems["icd10cm"] else c.code
    codings = [{"system": system, "code": code}]
    other = t.translation(system, code)
    if other is not None:
        codings.append(other.coding(ctx.base_url))
    out: dict = {"coding": codings}
    if c.display:
        out["text"] = c.display
    return out


def _practitioner(ctx: MappingContext, clinic_id: str) -> dict:
    ctx.check_practitioner(clinic_id)
    return ids.reference("practitioner", clinic_id)


def encounter_dict(s: Session, ctx: MappingContext) -> dict:
    """The US Core Encounter for the visit."""
    t = terminology()
    out = ids.head(ctx, "session", profiles.ENCOUNTER, s.id)
    out["status"] = t.status("session_encounter", s.status)
    out["class"] = t.fhir("act_code", "AMB").coding(ctx.base_url)
    code, text = t.fixed("encounter_type")
    out["type"] = [concept([code], ctx.base_url, text)]
    out["subject"] = ids.reference("patient", s.patient_id)
    participants = [
        {
            "type": [concept([t.fhir("participation_type", "ATND")], ctx.base_url)],
            "individual": _practitioner(ctx, s.attending_id),
        }
    ]
    if s.nurse_id:
        participants.append(
            {
                "type": [concept([t.fhir("participation_type", "PART")], ctx.base_url)],
                "individual": _practitioner(ctx, s.nurse_id),
            }
        )
    out["participant"] = participants
    out["period"] = period(s.start, s.end)
    out["reasonCode"] = [indication_concept(s.indication, ctx)]
    out["reasonReference"] = [ids.reference("session-condition", s.id)]
    if s.location:
        out["location"] = [{"location": {"display": s.location}}]
    out["serviceProvider"] = organization_reference(ctx)
    return out


def condition_dict(s: Session, ctx: MappingContext) -> dict:
    """The indication as an encounter diagnosis of this visit."""
    t = terminology()
    out = ids.head(ctx, "session-condition", profiles.CONDITION_ENCOUNTER_DIAGNOSIS, s.id)
    out["clinicalStatus"] = concept([t.fhir("condition_clinical", "active")], ctx.base_url)
    out["category"] = [concept([t.fhir("condition_category", "encounter-diagnosis")], ctx.base_url)]
    out["code"] = indication_concept(s.indication, ctx)
    out["subject"] = ids.reference("patient", s.patient_id)
    out["encounter"] = ids.reference("session", s.id)
    return out


def weight_measured(s: Session) -> bool:
    """Whether the visit took place, so `weight_kg` is a weight measured that day (a planned or cancelled
    visit's weight is only the one planned with, and must not become a final Observation)."""
    return s.status in ("in-progress", "completed", "stopped")


def series_parts(s: Session) -> tuple[str, str]:
    """The id parts of the session's series CarePlan (patient MRN, series number)."""
    assert s.series is not None
    return s.patient_id, str(s.series.number)


def procedure_dict(s: Session, ctx: MappingContext) -> dict:
    """The US Core Procedure: the infusion therapy itself."""
    t = terminology()
    out = ids.head(ctx, "session-procedure", profiles.PROCEDURE, s.id)
    if s.series is not None:
        ser = s.series
        out["extension"] = [
            {
                "url": profiles.local_extension(ctx.base_url, "series-session"),
                "valuePositiveInt": ser.session_number,
            }
        ]
        out["basedOn"] = [
            {
                **ids.reference("series", *series_parts(s)),
                "display": f"Series {ser.number}, session {ser.session_number} of {ser.planned_sessions}",
            }
        ]
    status = t.status("session_procedure", s.status)
    out["status"] = status
    if s.status == "stopped" and s.stop_reason:
        out["statusReason"] = {"text": s.stop_reason}
    iv = not s.medications or any(m.route == "iv" for m in s.medications)
    code, text = t.fixed("procedure_iv_infusion" if iv else "procedure_drug_administration")
    out["code"] = concept([code], ctx.base_url, text)
    out["subject"] = ids.reference("patient", s.patient_id)
    out["encounter"] = ids.reference("session", s.id)
    if status in ("in-progress", "completed", "stopped"):  # us-core-7: performed when completed/in-progress
        out["performedPeriod"] = period(s.start, s.end)
    performers = [{"actor": _practitioner(ctx, s.attending_id)}]
    if s.nurse_id:
        performers.append({"actor": _practitioner(ctx, s.nurse_id)})
    out["performer"] = performers
    out["reasonCode"] = [indication_concept(s.indication, ctx)]
    out["reasonReference"] = [ids.reference("session-condition", s.id)]
    if s.note:
        out["note"] = [{"text": markdown(s.note)}]
    return out


def careplan_dict(s: Session, ctx: MappingContext) -> dict:
    """The series plan: planned session count; identical from every session of the series."""
    assert s.series is not None
    ser = s.series
    patient, number = series_parts(s)
    out = ids.head(ctx, "series", profiles.CARE_PLAN, patient, number, value=f"{patient}/series-{number}")
    out["status"] = "active"
    out["intent"] = "plan"
    out["title"] = f"Treatment series {ser.number}"
    out["subject"] = ids.reference("patient", s.patient_id)
    out["activity"] = [
        {
            "detail": {
                "status": "in-progress",
                "scheduledTiming": {"repeat": {"count": ser.planned_sessions}},
                "description": f"Series {ser.number}: {ser.planned_sessions} sessions planned",
            }
        }
    ]
    return out


def session_dicts(s: Session, ctx: MappingContext) -> list[dict]:
    """Every resource of one session, in a fixed order, Provenance last."""
    # Imported here: the child modules import helpers from this one.
    from mappings.adverse_event import adverse_event_dicts
    from mappings.assessment import assessment_dicts
    from mappings.medication import medication_dicts
    from mappings.provenance import provenance_dict
    from mappings.vitals import body_weight_dict, vitals_dicts

    out = [encounter_dict(s, ctx), condition_dict(s, ctx), procedure_dict(s, ctx)]
    if s.series is not None:
        out.append(careplan_dict(s, ctx))
    if weight_measured(s):
        out.append(body_weight_dict(s, ctx))
    out.extend(medication_dicts(s, ctx))
    out.extend(vitals_dicts(s, ctx))
    for a in s.assessments:
        out.extend(assessment_dicts(a, ctx, s))
    out.extend(adverse_event_dicts(s, ctx))
    out.append(provenance_dict(s, out, ctx))
    return out


def to_fhir_session(s: Session, ctx: MappingContext) -> list[Resource]:
    """Map an infusion session to all of its resources (validated)."""
    return [validate(d) for d in session_dicts(s, ctx)]
