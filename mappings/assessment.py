"""Outcome assessments become a QuestionnaireResponse, a total-score Observation and maybe a safety Flag.

An outcome assessment becomes a QuestionnaireResponse, a total-score Observation and, for a PHQ-9 whose item 9
is above 0, a safety Flag.

QuestionnaireResponse: http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse;
  canonical `questionnaire` = `{base}/Questionnaire/{instrument}|{version}`; one item per question (LOINC
  answer Coding where the instrument has an answer list, else the integer), plus the computed total.
Observation: http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment;
  category survey, total-score code, valueQuantity `{score}`, `derivedFrom` the response, `interpretation` the
  severity band (only where the reference gives bands) and, for PHQ-9 item 9 > 0, the safety code.
Flag: R4 core, http://hl7.org/fhir/StructureDefinition/Flag: the PHQ-9 item 9 safety signal recorded for the
  alerting built later (status active, local code `phq9-item9-positive`). Timing (baseline/pre/post/follow-up)
  is kept on the response and the Observation as the clinic extension
  `{base}/StructureDefinition/assessment-timing` (valueCoding, local CodeSystem assessment-timing). The total
  is computed here (sum, or mean rounded to 2 decimals); ingest has already checked any sent total.
"""

from __future__ import annotations

from decimal import Decimal

from mappings import ids, profiles
from mappings.codes import Instrument, terminology
from mappings.context import MappingContext
from mappings.errors import MappingError
from mappings.fhirtypes import concept, dt, quantity, round_amount
from mappings.models import Resource, validate
from mappings.records import Assessment, Session


def questionnaire_url(ctx: MappingContext, key: str) -> str:
    """The canonical URL of an instrument's Questionnaire."""
    return f"{ctx.base_url}/Questionnaire/{key}"


def score(inst: Instrument, answers: tuple[int, ...]) -> int | float:
    """The instrument total: sum, or mean rounded to 2 decimals."""
    if len(answers) != len(inst.items):
        raise MappingError(f"{inst.key}: {len(answers)} answers for {len(inst.items)} items")
    total = sum(answers)
    if inst.scoring == "sum":
        return total
    return round_amount(Decimal(total) / Decimal(len(answers)))


def safety_signal(inst: Instrument, answers: tuple[int, ...]) -> bool:
    """PHQ-9 item 9 (thoughts of self-harm) above 0: a safety requirement (reference 4.2)."""
    return inst.safety_item is not None and answers[inst.safety_item - 1] > (inst.safety_above or 0)


def _timing(a: Assessment, ctx: MappingContext) -> dict:
    return {
        "url": profiles.local_extension(ctx.base_url, "assessment-timing"),
        "valueCoding": terminology().local("assessment_timing", a.timing).coding(ctx.base_url),
    }


def _answer(inst: Instrument, value: int, ctx: MappingContext) -> dict:
    if inst.answers is None:
        return {"valueInteger": value}
    for s, code in inst.answers:
        if s == value:
            return {"valueCoding": code.coding(ctx.base_url)}
    raise MappingError(f"{inst.key}: answer {value} outside {inst.min}..{inst.max}")


def _context(out: dict, a: Assessment, session: Session | None) -> None:
    if a.patient_id is None:
        raise MappingError(f"assessment {a.id!r} has no patient")
    out["subject"] = ids.reference("patient", a.patient_id)
    if session is not None:
        out["encounter"] = ids.reference("session", session.id)


def response_dict(a: Assessment, ctx: MappingContext, session: Session | None) -> dict:
    """The US Core QuestionnaireResponse."""
    inst = terminology().instrument(a.instrument)
    out = ids.head(ctx, "assessment", profiles.QUESTIONNAIRE_RESPONSE, a.id)
    out["extension"] = [_timing(a, ctx)]
    out["questionnaire"] = f"{questionnaire_url(ctx, inst.key)}|{ctx.questionnaire_version}"
    out["status"] = "completed"
    _context(out, a, session)
    out["authored"] = dt(a.authored)
    if inst.self_report:
        out["author"] = ids.reference("patient", a.patient_id or "")
    items = [{"linkId": f"q{i}", "answer": [_answer(inst, v, ctx)]} for i, v in enumerate(a.answers, 1)]
    total = score(inst, a.answers)
    items.append(
        {"linkId": "total", "answer": [{"valueDecimal" if inst.scoring == "mean" else "valueInteger": total}]}
    )
    out["item"] = items
    return out


def score_dict(a: Assessment, ctx: MappingContext, session: Session | None) -> dict:
    """The total-score Observation (US Core Observation Screening Assessment)."""
    t = terminology()
    inst = t.instrument(a.instrument)
    total = score(inst, a.answers)
    out = ids.head(ctx, "assessment-score", profiles.SCREENING_ASSESSMENT, a.id)
    out["extension"] = [_timing(a, ctx)]
    out["status"] = "final"
    out["category"] = [concept([t.fhir("observation_category", "survey")], ctx.base_url)]
    out["code"] = concept([inst.total], ctx.base_url, f"{inst.title} total score")
    _context(out, a, session)
    out["effectiveDateTime"] = dt(a.authored)
    if inst.self_report:
        out["performer"] = [ids.reference("patient", a.patient_id or "")]
    out["valueQuantity"] = quantity(total, "{score}")
    interpretation = []
    band = t.band(inst.key, total)
    if band is not None:
        interpretation.append(concept([band.code], ctx.base_url, band.code.display))
    if safety_signal(inst, a.answers):
        flag = t.local("safety_flags", "phq9-item9-positive")
        interpretation.append(concept([flag], ctx.base_url, flag.display))
    if interpretation:
        out["interpretation"] = interpretation
    out["derivedFrom"] = [ids.reference("assessment", a.id)]
    return out


def flag_dict(a: Assessment, ctx: MappingContext, session: Session | None) -> dict:
    """The active safety Flag for PHQ-9 item 9 > 0, for clinician review and the later alerting."""
    flag = terminology().local("safety_flags", "phq9-item9-positive")
    out = ids.head(ctx, "safety-flag", profiles.FLAG, a.id)
    out["status"] = "active"
    out["code"] = concept([flag], ctx.base_url, flag.display)
    _context(out, a, session)
    out["period"] = {"start": dt(a.authored)}
    return out


def assessment_dicts(a: Assessment, ctx: MappingContext, session: Session | None = None) -> list[dict]:
    """Response, score Observation and, when raised, the safety Flag."""
    inst = terminology().instrument(a.instrument)
    out = [response_dict(a, ctx, session), score_dict(a, ctx, session)]
    if safety_signal(inst, a.answers):
        out.append(flag_dict(a, ctx, session))
    return out


def to_fhir_assessment(a: Assessment, ctx: MappingContext, session: Session | None = None) -> list[Resource]:
    """Map a standalone (or, with `session`, an in-visit) assessment."""
    return [validate(d) for d in assessment_dicts(a, ctx, session)]
