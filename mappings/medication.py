"""Each drug given in a session becomes a MedicationAdministration (and a Medication when a lot is recorded).

MedicationAdministration: R4 core, http://hl7.org/fhir/StructureDefinition/MedicationAdministration (US Core
  has no MedicationAdministration profile). R4 links the visit as `context` (not `encounter`).
Medication: http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication, only when the record gives a
  lot number or expiry (R4 keeps batch data on Medication); the administration then references it.

Drug: RxNorm ingredient (IN, V/C only) or the clinic's local code (drugs.json); `rxnorm:NNNN` passes the
  clinic's own RxNorm code through. Route: SNOMED (IV) or local (routes.json). Dose (reference 1.2):
  `dosage.dose` is the absolute amount; a weight-based dose (mg/kg) keeps the prescribed figure in the
  `dose-per-weight` extension and in `dosage.text` together with the weight used, and
  `supportingInformation` points to that body-weight Observation (for visits that took place). A recorded
  `total_mg` is the amount given and wins over the computed one (both shown in the text). A rate is kept
  as recorded in `rateQuantity` (mg/kg/h allowed by the reference); the absolute rate at the session weight
  goes to the text. Wasted amounts (controlled-substance trail) go to a note, the witness to a performer
  with function `witness`.
"""

from __future__ import annotations

from decimal import Decimal

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.fhirtypes import concept, dec, dt, period, quantity, round_amount
from mappings.models import Resource, validate
from mappings.records import Amount, MedicationAdministration, Session
from mappings.session import weight_measured
from mappings.text import markdown

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def drug_concept(drug: str, ctx: MappingContext) -> tuple[dict, str, bool]:
    """The medication CodeableConcept, its text and whether it is a primary treatment (e.g. ketamine)."""
    t = terminology()
    if drug.startswith("rxnorm:"):
        code = drug.removeprefix("rxnorm:")
        known = next(
            (
                name
                for name, (_, codes, _) in t.drugs.items()
                if any(c.system == RXNORM and c.code == code for c in codes)
            ),
            None,
        )
        if known is not None:  # the clinic sent the code of a drug we know: treat it the same way
            return drug_concept(known, ctx)
        text = f"RxNorm {code}"
        return {"coding": [{"system": RXNORM, "code": code}], "text": text}, text, False
    text, codes, primary = t.drug(drug)
    return concept(codes, ctx.base_url, text), text, primary


def _fmt(value: float | int | Decimal) -> str:
    d = value if isinstance(value, Decimal) else dec(value)
    return format(d.normalize(), "f")


def _dosage(
    m: MedicationAdministration, s: Session, ctx: MappingContext, drug_text: str
) -> tuple[dict, bool]:
    """The dosage element, and whether it used the session weight."""
    t = terminology()
    route_text, route_codes = t.route(m.route)
    dosage: dict = {}
    words = [drug_text]
    weighted = False
    weight = dec(s.weight_kg)
    if m.dose is not None:
        unit = t.unit("dose", m.dose.unit)
        if unit.per_weight:
            weighted = True
            absolute = t.unit("dose", unit.absolute or "")
            computed = round_amount(dec(m.dose.value) * weight)
            given = m.total_mg if m.total_mg is not None and unit.absolute == "mg" else computed
            dosage["extension"] = [
                {
                    "url": profiles.local_extension(ctx.base_url, "dose-per-weight"),
                    "valueQuantity": quantity(m.dose.value, unit.ucum, m.dose.unit),
                }
            ]
            dosage["dose"] = quantity(given, absolute.ucum, unit.absolute)
            words.append(
                f"{_fmt(m.dose.value)} {m.dose.unit} x {_fmt(weight)} kg = {_fmt(computed)} {unit.absolute}"
            )
        else:
            dosage["dose"] = quantity(m.dose.value, unit.ucum, m.dose.unit)
            words.append(f"{_fmt(m.dose.value)} {m.dose.unit}")
    elif m.total_mg is not None:  # an infusion by rate: the recorded total is the amount given
        dosage["dose"] = quantity(m.total_mg, "mg")
    if m.rate is not None:
        unit = t.unit("rate", m.rate.unit)
        dosage["rateQuantity"] = quantity(m.rate.value, unit.ucum, m.rate.unit)
        words.append(f"at {_fmt(m.rate.value)} {m.rate.unit}")
        if unit.per_weight:
            weighted = True
            words.append(
                f"(x {_fmt(weight)} kg = {_fmt(round_amount(dec(m.rate.value) * weight))} {unit.absolute})"
            )
    if m.total_mg is not None:  # ingest checked it within 5% of dose (x weight) or rate x weight x hours
        words.append(f"(recorded total {_fmt(m.total_mg)} mg)")
    text = ", ".join([" ".join(words), route_text, *([m.site] if m.site else [])])
    return {
        "text": text,
        **({"site": {"text": m.site}} if m.site else {}),
        "route": concept(route_codes, ctx.base_url, route_text),
        **dosage,
    }, weighted


def _amount_text(a: Amount) -> str:
    return f"{_fmt(a.value)} {a.unit}"


def medication_product_dict(m: MedicationAdministration, med_concept: dict, ctx: MappingContext) -> dict:
    """The US Core Medication carrying the lot (and expiry) the dose was drawn from."""
    out = ids.head(ctx, "medication", profiles.MEDICATION, m.id)
    out["code"] = med_concept
    batch: dict = {}
    if m.lot_number:
        batch["lotNumber"] = m.lot_number
    if m.expiration_date:
        batch["expirationDate"] = m.expiration_date.isoformat()
    out["batch"] = batch
    return out


def administration_dicts(m: MedicationAdministration, s: Session, ctx: MappingContext) -> list[dict]:
    """The MedicationAdministration (preceded by its Medication when a lot is recorded)."""
    t = terminology()
    med_concept, drug_text, primary = drug_concept(m.drug, ctx)
    out = ids.head(ctx, "medication-administration", profiles.MEDICATION_ADMINISTRATION, m.id)
    out["partOf"] = [ids.reference("session-procedure", s.id)]
    out["status"] = t.status("medication_administration", m.status)
    result: list[dict] = []
    if m.lot_number or m.expiration_date:
        product = medication_product_dict(m, med_concept, ctx)
        result.append(product)
        out["medicationReference"] = {"reference": f"Medication/{product['id']}", "display": drug_text}
    else:
        out["medicationCodeableConcept"] = med_concept
    out["subject"] = ids.reference("patient", s.patient_id)
    out["context"] = ids.reference("session", s.id)
    if m.end is not None:
        out["effectivePeriod"] = period(m.start, m.end)
    else:  # a bolus or push: one instant (a Period without end would mean "still running")
        out["effectiveDateTime"] = dt(m.start)
    ctx.check_practitioner(m.performer_id)
    performers = [{"actor": ids.reference("practitioner", m.performer_id)}]
    if m.witness_id:
        ctx.check_practitioner(m.witness_id)
        performers.append(
            {
                "function": concept([t.fhir("med_admin_perform_function", "witness")], ctx.base_url),
                "actor": ids.reference("practitioner", m.witness_id),
            }
        )
    out["performer"] = performers
    if m.reason:
        out["reasonCode"] = [{"text": m.reason}]
    elif primary:
        out["reasonReference"] = [ids.reference("session-condition", s.id)]
    dosage, weighted = _dosage(m, s, ctx, drug_text)
    if weighted and weight_measured(s):
        out["supportingInformation"] = [ids.reference("body-weight", s.id)]
    if m.wasted is not None:
        witness = " (witnessed, see performer)" if m.witness_id else ""
        out["note"] = [{"text": markdown(f"Wasted (drawn but not given): {_amount_text(m.wasted)}{witness}")}]
    out["dosage"] = dosage
    result.append(out)
    return result


def is_primary(m: MedicationAdministration) -> bool:
    """Whether the administration gave the session's primary treatment drug (for AdverseEvent suspects)."""
    if m.drug.startswith("rxnorm:"):
        code = m.drug.removeprefix("rxnorm:")
        return any(
            entry.get("primary_treatment") and any(c.code == code and c.system == RXNORM for c in codes)
            for _, codes, entry in terminology().drugs.values()
        )
    return terminology().drug(m.drug)[2]


def medication_dicts(s: Session, ctx: MappingContext) -> list[dict]:
    """All administrations of a session."""
    out: list[dict] = []
    for m in s.medications:
        out.extend(administration_dicts(m, s, ctx))
    return out


def to_fhir_medication(m: MedicationAdministration, s: Session, ctx: MappingContext) -> list[Resource]:
    """Map one administration (with its session for patient, visit and weight)."""
    return [validate(d) for d in administration_dicts(m, s, ctx)]
