"""Vital signs: one Observation per measure per reading time, plus the body weight the doses were based on.

Profiles (vitals.json, reference section 3): us-core-blood-pressure (panel 85354-9 with systolic 8480-6 and
diastolic 8462-4 components), us-core-heart-rate, us-core-respiratory-rate, us-core-pulse-oximetry (both
2708-6 and 59408-5), us-core-body-temperature, us-core-body-weight (29463-7), all under
http://hl7.org/fhir/us/core/StructureDefinition/. Pain NRS (LOINC 72514-3, category survey) claims
us-core-observation-screening-assessment; ETCO2 (19891-1) and MOAA/S (local code, category exam) are plain R4
Observations without the vital-signs category, as the reference requires. A systolic or diastolic value
without its partner is not a US Core blood pressure: it is sent alone under the R4 core vitalsigns profile.
Vitals have no clinic id: the id is made from session id, the reading instant (UTC) and the measure.
"""

from __future__ import annotations

from mappings import ids
from mappings.codes import Vital, terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept, dt, quantity, utc_key
from mappings.models import Resource, validate
from mappings.records import VITAL_MEASURES, Session, VitalSigns


def _observation(
    ctx: MappingContext, s: Session, v: Vital, kind: str, parts: tuple[str, ...], when: str
) -> dict:
    t = terminology()
    out = ids.head(ctx, kind, v.profile, *parts)
    out["status"] = "final"
    if v.category:
        out["category"] = [concept([t.fhir("observation_category", v.category)], ctx.base_url)]
    out["code"] = concept(v.codes, ctx.base_url, v.text)
    out["subject"] = ids.reference("patient", s.patient_id)
    out["encounter"] = ids.reference("session", s.id)
    out["effectiveDateTime"] = when
    return out


def vital_dicts(vs: VitalSigns, s: Session, ctx: MappingContext) -> list[dict]:
    """The Observations of one reading time, in the contract's measure order."""
    t = terminology()
    instant, when = utc_key(vs.taken_at), dt(vs.taken_at)
    out: list[dict] = []
    done: set[str] = set()
    if vs.systolic is not None and vs.diastolic is not None:
        v = t.vital("blood_pressure")
        obs = _observation(ctx, s, v, "vital-sign", (s.id, instant, "blood_pressure"), when)
        unit = t.units["other"][v.unit].ucum
        obs["component"] = [
            {"code": concept(codes, ctx.base_url, text), "valueQuantity": quantity(getattr(vs, name), unit)}
            for name, text, codes in v.components
        ]
        out.append(obs)
        done = {"systolic", "diastolic"}
    for measure in VITAL_MEASURES:
        value = getattr(vs, measure)
        if value is None or measure in done:
            continue
        v = t.vital(measure)
        obs = _observation(ctx, s, v, "vital-sign", (s.id, instant, measure), when)
        obs["valueQuantity"] = quantity(value, t.units["other"][v.unit].ucum)
        out.append(obs)
    return out


def body_weight_dict(s: Session, ctx: MappingContext) -> dict:
    """The session's weight (US Core Body Weight), the basis of its weight-based doses; only for visits that
    took place (see session.weight_measured)."""
    t = terminology()
    v = t.vital("body_weight")
    obs = _observation(ctx, s, v, "body-weight", (s.id,), dt(s.start))
    obs["valueQuantity"] = quantity(s.weight_kg, t.units["other"][v.unit].ucum)
    return obs


def vitals_dicts(s: Session, ctx: MappingContext) -> list[dict]:
    """All vital-sign Observations of a session."""
    out: list[dict] = []
    for vs in s.vitals:
        out.extend(vital_dicts(vs, s, ctx))
    return out


def to_fhir_vitals(vs: VitalSigns, s: Session, ctx: MappingContext) -> list[Resource]:
    """Map one vital-signs set (with its session for patient and visit)."""
    return [validate(d) for d in vital_dicts(vs, s, ctx)]
