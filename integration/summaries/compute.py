"""The treatment summary, computed purely from one patient's stored FHIR resources (no I/O).

Sources, all as the mappings write them: Encounter + Procedure per session, MedicationAdministration
(ketamine found by its RxNorm ingredient code on the Medication), vital-sign Observations by encounter,
instrument total-score Observations (baseline by the assessment-timing extension), AdverseEvent, the PHQ-9
item-9 Flag, ServiceRequest (referral), CarePlan (series), Condition, AllergyIntolerance.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from integration.summaries.model import (
    Administration,
    AdverseEventItem,
    Allergy,
    Clinic,
    Judgement,
    Outcome,
    PatientInfo,
    Period,
    Person,
    Plan,
    Problem,
    Referral,
    SafetySignal,
    Score,
    Session,
    Summary,
    VitalReading,
)
from integration.summaries.rules import Catalogue, InstrumentRule

Resource = Mapping[str, Any]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
KETAMINE_RXCUI = "6130"
LOINC = "http://loinc.org"
SYSTOLIC, BP_PANEL, HEART_RATE, SPO2 = "8480-6", "85354-9", "8867-4", "2708-6"
_TIMING_EXT = "/StructureDefinition/assessment-timing"
_DOSE_PER_WEIGHT_EXT = "/StructureDefinition/dose-per-weight"
_ITEM9_FLAG = "phq9-item9-positive"


class SummaryError(ValueError):
    """The stored resources cannot make a summary (e.g. no Patient)."""


def compute_summary(
    patient_id: str,
    resources: Iterable[Resource],
    *,
    period: Period,
    clinic: Clinic,
    catalogue: Catalogue,
    generated_at: datetime,
) -> Summary:
    """One patient's summary for `period`; `resources` holds the patient's resources and the Practitioners
    they reference."""
    by_type: dict[str, list[Resource]] = defaultdict(list)
    index: dict[str, Resource] = {}
    for r in resources:
        by_type[r["resourceType"]].append(r)
        index[f"{r['resourceType']}/{r['id']}"] = r
    patient = index.get(f"Patient/{patient_id}")
    if patient is None:
        raise SummaryError(f"no Patient/{patient_id} among the resources")

    all_sessions = _sessions(by_type, index, _tolerability(by_type, catalogue))
    sessions = tuple(s for s in all_sessions if period.contains(s.start))
    given = [s.ketamine for s in sessions if s.ketamine and s.ketamine.dose_mg is not None]
    attending = _attending(by_type, index, sessions or all_sessions)
    return Summary(
        patient=_patient(patient),
        period=period,
        generated_at=generated_at,
        clinic=clinic,
        attending=attending,
        referral=_referral(by_type, index),
        sessions=sessions,
        ketamine_total_mg=round(sum(a.dose_mg for a in given if a.dose_mg is not None), 1),
        ketamine_infusions=len(given),
        outcomes=_outcomes(by_type, catalogue, period, all_sessions),
        safety_signals=_signals(by_type, period),
        problems=_problems(by_type),
        allergies=_allergies(by_type),
        plan=_plan(by_type, period),
    )


# --- small readers -----------------------------------------------------------------------------------------


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _concept_text(cc: Resource | None) -> str:
    if not cc:
        return ""
    codings = cc.get("coding", [])
    return cc.get("text") or next((c.get("display") or c["code"] for c in codings), "")


def _codes(cc: Resource | None) -> tuple[tuple[str, str], ...]:
    return tuple(
        (c["system"], c["code"]) for c in (cc or {}).get("coding", []) if "system" in c and "code" in c
    )


def _human_name(resource: Resource | None) -> str:
    if not resource:
        return "unknown"
    for name in resource.get("name", []):
        if name.get("text"):
            return name["text"]
        parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
        joined = " ".join(p for p in parts if p)
        if joined:
            return joined
    return "unnamed"


def _person(index: Mapping[str, Resource], reference: str | None) -> Person | None:
    if not reference:
        return None
    return Person(reference, _human_name(index.get(reference)))


def _quantity(obs: Resource, code: str) -> float | None:
    """The value of the Observation, or of its component with this LOINC code."""
    if any(c.get("code") == code for c in obs["code"].get("coding", [])) and "valueQuantity" in obs:
        return float(obs["valueQuantity"]["value"])
    for comp in obs.get("component", []):
        if any(c.get("code") == code for c in comp["code"].get("coding", [])) and "valueQuantity" in comp:
            return float(comp["valueQuantity"]["value"])
    return None


# Annotation.text is markdown; the mappings backslash-escape what would render differently. A CommonMark
# backslash escape is a backslash before ASCII punctuation, so removing those gives the text as typed.
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _notes(resource: Resource) -> tuple[str, ...]:
    return tuple(_MARKDOWN_ESCAPE.sub(r"\1", n["text"]) for n in resource.get("note", []) if n.get("text"))


def _extension(resource: Resource, suffix: str) -> Resource | None:
    return next((e for e in resource.get("extension", []) if e["url"].endswith(suffix)), None)


# --- sections ----------------------------------------------------------------------------------------------


def _patient(p: Resource) -> PatientInfo:
    return PatientInfo(
        reference=_ref(p),
        name=_human_name(p),
        birth_date=datetime.fromisoformat(p["birthDate"]).date() if p.get("birthDate") else None,
        gender=p.get("gender"),
        identifiers=tuple((i["system"], i["value"]) for i in p.get("identifier", []) if "system" in i),
    )


def _referral(by_type: Mapping[str, list[Resource]], index: Mapping[str, Resource]) -> Referral | None:
    referrals = [
        sr
        for sr in by_type.get("ServiceRequest", [])
        if any(c.get("code") == "referral" for cat in sr.get("category", []) for c in cat.get("coding", []))
    ]
    if not referrals:
        return None
    sr = max(referrals, key=lambda r: r.get("authoredOn", ""))
    reasons = sr.get("reasonCode", [])
    return Referral(
        reference=_ref(sr),
        reason="; ".join(_concept_text(r) for r in reasons) or "not stated",
        reason_codes=tuple(c for r in reasons for c in _codes(r)),
        authored=_dt(sr.get("authoredOn")),
        referrer=_person(index, sr.get("requester", {}).get("reference")),
        note=" ".join(_notes(sr)) or None,
    )


def _administration(ma: Resource, index: Mapping[str, Resource]) -> Administration:
    med_ref = ma.get("medicationReference", {}).get("reference")
    concept = index.get(med_ref, {}).get("code") if med_ref else ma.get("medicationCodeableConcept")
    rxnorm = next((c["code"] for c in (concept or {}).get("coding", []) if c.get("system") == RXNORM), None)
    dosage = ma.get("dosage", {})
    dose = dosage.get("dose")
    per_weight = _extension(dosage, _DOSE_PER_WEIGHT_EXT)
    period = ma.get("effectivePeriod", {})
    start = _dt(period.get("start") or ma.get("effectiveDateTime"))
    reasons = [_concept_text(r) for r in ma.get("reasonCode", [])]
    return Administration(
        reference=_ref(ma),
        medication=_concept_text(concept) or ma.get("medicationReference", {}).get("display", "medication"),
        rxnorm=rxnorm,
        dose_mg=float(dose["value"]) if dose and dose.get("code") == "mg" else None,
        dose_unit=dose.get("code") if dose else None,
        per_kg=float(per_weight["valueQuantity"]["value"]) if per_weight else None,
        start=start,
        end=_dt(period.get("end")),
        status=ma["status"],
        reason="; ".join(r for r in reasons if r) or None,
    )


def _extreme(readings: list[VitalReading], highest: bool) -> VitalReading | None:
    if not readings:
        return None
    # Ties go to the earliest reading, so the choice is stable.
    ordered = sorted(readings, key=lambda r: r.at)
    return (max if highest else min)(ordered, key=lambda r: r.value)


def _tolerability(by_type: Mapping[str, list[Resource]], catalogue: Catalogue) -> dict[str, Score]:
    """The last tolerability score (CADSS) recorded in each encounter."""
    out: dict[str, Score] = {}
    for obs in by_type.get("Observation", []):
        rule = next((catalogue.by_code.get(c) for c in _codes(obs["code"]) if c in catalogue.by_code), None)
        enc = obs.get("encounter", {}).get("reference")
        at = _dt(obs.get("effectiveDateTime"))
        if (
            rule is None
            or rule.role != "tolerability"
            or enc is None
            or at is None
            or "valueQuantity" not in obs
        ):
            continue
        if obs.get("status") in ("final", "amended", "corrected") and (enc not in out or out[enc].at <= at):
            out[enc] = Score(_ref(obs), float(obs["valueQuantity"]["value"]), at, None)
    return out


def _sessions(
    by_type: Mapping[str, list[Resource]], index: Mapping[str, Resource], tolerability: Mapping[str, Score]
) -> tuple[Session, ...]:
    procedures = {p["encounter"]["reference"]: p for p in by_type.get("Procedure", []) if "encounter" in p}
    meds: dict[str, list[Administration]] = defaultdict(list)
    for ma in by_type.get("MedicationAdministration", []):
        if "context" in ma:
            meds[ma["context"]["reference"]].append(_administration(ma, index))
    vitals: dict[str, dict[str, list[VitalReading]]] = defaultdict(lambda: defaultdict(list))
    for obs in by_type.get("Observation", []):
        enc = obs.get("encounter", {}).get("reference")
        at = _dt(obs.get("effectiveDateTime"))
        if enc is None or at is None or obs.get("status") not in ("final", "amended", "corrected"):
            continue
        for code, unit in ((SYSTOLIC, "mm[Hg]"), (HEART_RATE, "/min"), (SPO2, "%")):
            value = _quantity(obs, code)
            if value is not None:
                vitals[enc][code].append(VitalReading(_ref(obs), value, unit, at))
    events: dict[str, list[AdverseEventItem]] = defaultdict(list)
    for ae in by_type.get("AdverseEvent", []):
        enc = ae.get("encounter", {}).get("reference")
        events[enc or ""].append(
            AdverseEventItem(
                reference=_ref(ae),
                event=_concept_text(ae.get("event")) or "adverse event",
                severity=_concept_text(ae.get("severity")) or None,
                outcome=_concept_text(ae.get("outcome")) or None,
                onset=_dt(ae.get("date")),
                session_reference=enc,
            )
        )
    out = []
    for enc in by_type.get("Encounter", []):
        ref = _ref(enc)
        start = _dt(enc.get("period", {}).get("start"))
        if start is None:
            continue
        proc = procedures.get(ref)
        given = sorted(meds.get(ref, []), key=lambda a: (a.start is None, a.start))
        ketamine = next((a for a in given if a.rxnorm == KETAMINE_RXCUI), None)
        reason = (proc or enc).get("reasonCode", [])
        series = next((b.get("display") for b in (proc or {}).get("basedOn", []) if b.get("display")), None)
        v = vitals.get(ref, {})
        out.append(
            Session(
                encounter=ref,
                procedure=_ref(proc) if proc else None,
                start=start,
                end=_dt(enc.get("period", {}).get("end")),
                indication="; ".join(_concept_text(r) for r in reason) or "not stated",
                indication_codes=tuple(c for r in reason for c in _codes(r)),
                status=proc["status"] if proc else enc["status"],
                status_reason=_concept_text(proc.get("statusReason")) or None if proc else None,
                series_label=series,
                ketamine=ketamine,
                adjuncts=tuple(a for a in given if a is not ketamine),
                peak_systolic=_extreme(v.get(SYSTOLIC, []), highest=True),
                peak_heart_rate=_extreme(v.get(HEART_RATE, []), highest=True),
                lowest_spo2=_extreme(v.get(SPO2, []), highest=False),
                adverse_events=tuple(sorted(events.get(ref, []), key=lambda e: e.onset or start)),
                notes=_notes(proc or {}),
                dissociation=tolerability.get(ref),
            )
        )
    return tuple(sorted(out, key=lambda s: s.start))


def _attending(
    by_type: Mapping[str, list[Resource]], index: Mapping[str, Resource], sessions: tuple[Session, ...]
) -> Person | None:
    encounters = {_ref(e): e for e in by_type.get("Encounter", [])}
    for session in reversed(sessions):
        for part in encounters[session.encounter].get("participant", []):
            codes = {c.get("code") for t in part.get("type", []) for c in t.get("coding", [])}
            if "ATND" in codes and "individual" in part:
                return _person(index, part["individual"]["reference"])
    return None


def _band(rule: InstrumentRule, value: float) -> str | None:
    return next((b.label for b in rule.bands if b.low <= value <= b.high), None)


def judge_response(
    baseline: float | None, latest: float | None, min_reduction: float, definition: str
) -> Judgement:
    """Response: reduction from baseline of at least `min_reduction` percent; needs a baseline above 0."""
    if baseline is None or latest is None or baseline <= 0:
        return Judgement(None, f"{definition} Not assessed: no baseline above 0 and later score.")
    return Judgement((baseline - latest) / baseline * 100 >= min_reduction, definition)


def judge_remission(rule: InstrumentRule, latest: float | None) -> Judgement:
    rem = rule.remission
    if rem is None:
        return Judgement(None, f"No remission threshold for {rule.title} in the clinical reference.")
    if not rem.assessed:
        return Judgement(
            None,
            f"{rem.definition}. Not assessed: the reference marks this threshold {rem.mark}"
            " (not verified in an authoritative source).",
        )
    if latest is None:
        return Judgement(None, f"{rem.definition}. Not assessed: no score in the period.")
    return Judgement(rem.met(latest), rem.definition)


def _outcomes(
    by_type: Mapping[str, list[Resource]], catalogue: Catalogue, period: Period, sessions: tuple[Session, ...]
) -> tuple[Outcome, ...]:
    first_infusion = min(
        (s.ketamine.start for s in sessions if s.ketamine and s.ketamine.start), default=None
    )
    infusion_start = {s.encounter: s.ketamine.start for s in sessions if s.ketamine and s.ketamine.start}
    # Per rule: (score, timing code, encounter) of every final total-score Observation.
    found: dict[str, tuple[InstrumentRule, list[tuple[Score, str | None, str | None]]]] = {}
    for obs in by_type.get("Observation", []):
        if obs.get("status") not in ("final", "amended", "corrected") or "valueQuantity" not in obs:
            continue
        rule = next((catalogue.by_code.get(c) for c in _codes(obs["code"]) if c in catalogue.by_code), None)
        at = _dt(obs.get("effectiveDateTime"))
        if rule is None or rule.role != "outcome" or at is None:
            continue
        value = float(obs["valueQuantity"]["value"])
        timing = (_extension(obs, _TIMING_EXT) or {}).get("valueCoding", {}).get("code")
        score = Score(_ref(obs), value, at, _band(rule, value))
        found.setdefault(rule.key, (rule, []))[1].append(
            (score, timing, obs.get("encounter", {}).get("reference"))
        )
    for _rule, recorded in found.values():
        recorded[:] = _pre_infusion(recorded, infusion_start)
    out = []
    for rule, scored in found.values():
        baseline = next((s for s, t, _ in scored if t == "baseline"), None)
        if baseline is None and first_infusion is not None:
            baseline = next((s for s, _, _ in scored if s.at < first_infusion), None)
        in_period = [s for s, _, _ in scored if period.contains(s.at)]
        latest = in_period[-1] if in_period else None
        if latest is not None and baseline is not None and latest.at <= baseline.at:
            latest = None
        change = pct = None
        if baseline and latest:
            change = round(latest.value - baseline.value, 2)
            pct = round(change / baseline.value * 100, 1) if baseline.value else None
        shown = tuple(s for s, _, _ in scored if period.contains(s.at) or s is baseline)
        out.append(
            Outcome(
                key=rule.key,
                title=rule.title,
                loinc=rule.loinc,
                code_system=rule.code_system,
                code=rule.code,
                scale_max=rule.scale_max,
                bands=rule.bands,
                scores=shown,
                baseline=baseline,
                latest=latest,
                change_points=change,
                change_percent=pct,
                response=judge_response(
                    baseline.value if baseline else None,
                    latest.value if latest else None,
                    catalogue.response_min_reduction,
                    catalogue.response_definition,
                ),
                remission=judge_remission(rule, latest.value if latest else None),
            )
        )
    return tuple(sorted(out, key=lambda o: o.key))


def _pre_infusion(
    recorded: list[tuple[Score, str | None, str | None]], infusion_start: Mapping[str, datetime]
) -> list[tuple[Score, str | None, str | None]]:
    """One score per infusion visit: the last recorded before the infusion started (readings during and
    after it show its acute effect, not the course). Scores outside a visit are all kept. Oldest first."""
    kept: list[tuple[Score, str | None, str | None]] = []
    last_in_visit: dict[str, tuple[Score, str | None, str | None]] = {}
    for item in sorted(recorded, key=lambda x: (x[0].at, x[0].reference)):
        score, _, encounter = item
        start = infusion_start.get(encounter) if encounter else None
        if start is None:
            kept.append(item)
        elif score.at < start:
            last_in_visit[encounter] = item  # type: ignore[index]
    return sorted([*kept, *last_in_visit.values()], key=lambda x: (x[0].at, x[0].reference))


def _signals(by_type: Mapping[str, list[Resource]], period: Period) -> tuple[SafetySignal, ...]:
    out = []
    for flag in by_type.get("Flag", []):
        if not any(c.get("code") == _ITEM9_FLAG for c in flag.get("code", {}).get("coding", [])):
            continue
        if flag.get("status") == "entered-in-error":
            continue
        at = _dt(flag.get("period", {}).get("start"))
        if at is not None and not period.contains(at):
            continue
        out.append(
            SafetySignal(
                _ref(flag), _concept_text(flag["code"]), at, flag.get("encounter", {}).get("reference")
            )
        )
    return tuple(sorted(out, key=lambda s: (s.at is None, s.at)))


def _problems(by_type: Mapping[str, list[Resource]]) -> tuple[Problem, ...]:
    """Distinct diagnoses (by code), the earliest recording of each."""
    seen: dict[tuple[tuple[str, str], ...] | str, Problem] = {}
    conditions = sorted(by_type.get("Condition", []), key=lambda c: c.get("recordedDate") or "")
    for cond in conditions:
        codes = _codes(cond.get("code"))
        key: tuple[tuple[str, str], ...] | str = codes or _concept_text(cond.get("code"))
        if key in seen:
            continue
        seen[key] = Problem(
            _ref(cond), _concept_text(cond.get("code")), codes, _dt(cond.get("onsetDateTime"))
        )
    return tuple(seen.values())


def _allergies(by_type: Mapping[str, list[Resource]]) -> tuple[Allergy, ...]:
    out = []
    for a in by_type.get("AllergyIntolerance", []):
        codes = _codes(a.get("code"))
        out.append(
            Allergy(
                _ref(a), _concept_text(a.get("code")), codes, ("http://snomed.info/sct", "716186003") in codes
            )
        )
    return tuple(sorted(out, key=lambda a: a.reference))


def _plan(by_type: Mapping[str, list[Resource]], period: Period) -> Plan:
    """Sessions remaining in the latest series as of the end of the period: its CarePlan's planned count
    minus sessions given in it by then (so a past period's summary does not change with later sessions)."""
    plans = {_ref(p): p for p in by_type.get("CarePlan", [])}
    procedures = [
        p
        for p in by_type.get("Procedure", [])
        if period.end is None
        or "start" not in p.get("performedPeriod", {})
        or datetime.fromisoformat(p["performedPeriod"]["start"]).date() <= period.end
    ]
    if not plans:
        return Plan(None, None, 0, None, None)
    latest_ref = None
    for proc in sorted(procedures, key=lambda p: p.get("performedPeriod", {}).get("start", "")):
        latest_ref = next(
            (b["reference"] for b in proc.get("basedOn", []) if b.get("reference") in plans), latest_ref
        )
    care_plan = plans[latest_ref] if latest_ref else next(iter(plans.values()))
    planned = next(
        (
            a["detail"]["scheduledTiming"]["repeat"]["count"]
            for a in care_plan.get("activity", [])
            if a.get("detail", {}).get("scheduledTiming", {}).get("repeat", {}).get("count")
        ),
        None,
    )
    done = sum(
        1
        for proc in procedures
        if proc.get("status") in ("completed", "stopped")
        and any(b.get("reference") == _ref(care_plan) for b in proc.get("basedOn", []))
    )
    remaining = max(planned - done, 0) if planned is not None else None
    return Plan(care_plan.get("title"), planned, done, remaining, _ref(care_plan))
