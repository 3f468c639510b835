"""C-CDA R2.1 coded entries (templates and constraints: clinical-standards.md section 6.2, all V)."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from integration.summaries.cda_common import (
    ACTCODE_OID,
    LOINC_OID,
    NCI_OID,
    SNOMED_OID,
    coded,
    entry_id,
    sub,
    template,
    time_el,
    xsi_type,
)
from integration.summaries.model import (
    Administration,
    Allergy,
    Outcome,
    Problem,
    Score,
    Session,
    VitalReading,
)

_CODES = {
    k: v
    for k, v in json.loads(Path(__file__).with_name("cda_codes.json").read_text())["codes"].items()
    if v["mark"] == "V"
}
IV_ROUTE_NCI = "C38276"  # INTRAVENOUS (NCI Thesaurus), V: reference 1.2
VITALS_ORGANIZER_SNOMED, VITALS_ORGANIZER_LOINC = "46680005", "74728-7"  # V: reference 6.2


def medication_activity(entry: etree._Element, a: Administration) -> None:
    """Medication Activity (2.16.840.1.113883.10.20.22.4.16:2014-06-09), moodCode EVN: a dose given."""
    sa = sub(entry, "substanceAdministration", classCode="SBADM", moodCode="EVN")
    template(sa, "2.16.840.1.113883.10.20.22.4.16", "2014-06-09")
    entry_id(sa, a.reference)
    sub(sa, "statusCode", code="completed" if a.status == "completed" else "aborted")
    eff = xsi_type(sub(sa, "effectiveTime"), "IVL_TS")
    time_el(eff, "low", a.start)
    if a.end is not None:
        time_el(eff, "high", a.end)
    sub(sa, "routeCode", code=IV_ROUTE_NCI, codeSystem=NCI_OID, displayName="INTRAVENOUS")
    if a.dose_mg is not None:
        sub(sa, "doseQuantity", value=f"{a.dose_mg:g}", unit="mg")
    else:
        sub(sa, "doseQuantity", nullFlavor="UNK")
    product = sub(sub(sa, "consumable"), "manufacturedProduct", classCode="MANU")
    template(product, "2.16.840.1.113883.10.20.22.4.23", "2014-06-09")
    material = sub(product, "manufacturedMaterial")
    codes = (("http://www.nlm.nih.gov/research/umls/rxnorm", a.rxnorm),) if a.rxnorm else ()
    coded(material, "code", codes, a.medication)


def vital_signs_organizer(entry: etree._Element, s: Session) -> None:
    """Vital Signs Organizer (4.26:2015-08-01) holding the session's recorded extremes (4.27:2014-06-09)."""
    org = sub(entry, "organizer", classCode="CLUSTER", moodCode="EVN")
    template(org, "2.16.840.1.113883.10.20.22.4.26", "2015-08-01")
    entry_id(org, f"{s.encounter}#vitals")
    code = sub(org, "code", code=VITALS_ORGANIZER_SNOMED, codeSystem=SNOMED_OID)
    sub(code, "translation", code=VITALS_ORGANIZER_LOINC, codeSystem=LOINC_OID)
    sub(org, "statusCode", code="completed")
    eff = xsi_type(sub(org, "effectiveTime"), "IVL_TS")
    time_el(eff, "low", s.start)
    time_el(eff, "high", s.end)
    for loinc, reading in (
        ("8480-6", s.peak_systolic),
        ("8867-4", s.peak_heart_rate),
        ("2708-6", s.lowest_spo2),
    ):
        if reading is not None:
            _vital(sub(org, "component"), loinc, reading)


def _vital(component: etree._Element, loinc: str, r: VitalReading) -> None:
    obs = sub(component, "observation", classCode="OBS", moodCode="EVN")
    template(obs, "2.16.840.1.113883.10.20.22.4.27", "2014-06-09")
    entry_id(obs, f"{r.reference}#{loinc}")
    sub(obs, "code", code=loinc, codeSystem=LOINC_OID)
    sub(obs, "statusCode", code="completed")
    time_el(obs, "effectiveTime", r.at)
    xsi_type(sub(obs, "value", value=f"{r.value:g}", unit=r.unit), "PQ")


def result_organizer(entry: etree._Element, o: Outcome) -> None:
    """Result Organizer (4.1:2015-08-01) per instrument with one Result Observation (4.2) per score."""
    org = sub(entry, "organizer", classCode="CLUSTER", moodCode="EVN")
    template(org, "2.16.840.1.113883.10.20.22.4.1", "2015-08-01")
    entry_id(org, f"outcome/{o.key}")
    coded(org, "code", ((o.code_system, o.code),), f"{o.title} score")
    sub(org, "statusCode", code="completed")
    eff = xsi_type(sub(org, "effectiveTime"), "IVL_TS")
    time_el(eff, "low", o.scores[0].at)
    time_el(eff, "high", o.scores[-1].at)
    for score in o.scores:
        _result(sub(org, "component"), o, score)


def _result(component: etree._Element, o: Outcome, score: Score) -> None:
    obs = sub(component, "observation", classCode="OBS", moodCode="EVN")
    template(obs, "2.16.840.1.113883.10.20.22.4.2", "2015-08-01")
    entry_id(obs, score.reference)
    coded(obs, "code", ((o.code_system, o.code),), f"{o.title} score")
    sub(obs, "statusCode", code="completed")
    time_el(obs, "effectiveTime", score.at)
    xsi_type(sub(obs, "value", value=f"{score.value:g}", unit="{score}"), "PQ")


def problem_concern(entry: etree._Element, p: Problem) -> None:
    """Problem Concern Act (4.3:2015-08-01) with a Problem Observation (4.4:2015-08-01)."""
    act = sub(entry, "act", classCode="ACT", moodCode="EVN")
    template(act, "2.16.840.1.113883.10.20.22.4.3", "2015-08-01")
    entry_id(act, f"{p.reference}#concern")
    sub(act, "code", code="CONC", codeSystem="2.16.840.1.113883.5.6")
    sub(act, "statusCode", code="active")
    time_el(sub(act, "effectiveTime"), "low", p.onset)
    obs = sub(sub(act, "entryRelationship", typeCode="SUBJ"), "observation", classCode="OBS", moodCode="EVN")
    template(obs, "2.16.840.1.113883.10.20.22.4.4", "2015-08-01")
    entry_id(obs, p.reference)
    _code(obs, "code", "problem_type", "problem_type_loinc")
    sub(obs, "statusCode", code="completed")
    time_el(sub(obs, "effectiveTime"), "low", p.onset)
    coded(obs, "value", p.codes, p.text, cd_type=True)


def allergy_concern(entry: etree._Element, a: Allergy) -> None:
    """Allergy Concern Act (4.30:2015-08-01) with an Allergy Intolerance Observation (4.7:2014-06-09)."""
    act = sub(entry, "act", classCode="ACT", moodCode="EVN")
    template(act, "2.16.840.1.113883.10.20.22.4.30", "2015-08-01")
    entry_id(act, f"{a.reference}#concern")
    sub(act, "code", code="CONC", codeSystem="2.16.840.1.113883.5.6")
    sub(act, "statusCode", code="active")
    time_el(sub(act, "effectiveTime"), "low", None)
    obs = sub(sub(act, "entryRelationship", typeCode="SUBJ"), "observation", classCode="OBS", moodCode="EVN")
    template(obs, "2.16.840.1.113883.10.20.22.4.7", "2014-06-09")
    entry_id(obs, a.reference)
    sub(obs, "code", code="ASSERTION", codeSystem=ACTCODE_OID)
    sub(obs, "statusCode", code="completed")
    if a.no_known:
        # HL7's pattern for "no known allergies": the negated allergy-to-substance assertion.
        obs.set("negationInd", "true")
        sub(sub(obs, "effectiveTime"), "low", nullFlavor="NA")
        xsi_type(_code(obs, "value", "no_known_allergy_negated"), "CD")
    else:
        time_el(sub(obs, "effectiveTime"), "low", None)
        xsi_type(_code(obs, "value", "allergy_type"), "CD")
    role = sub(sub(obs, "participant", typeCode="CSM"), "participantRole", classCode="MANU")
    entity = sub(role, "playingEntity", classCode="MMAT")
    if a.no_known:
        sub(entity, "code", nullFlavor="NA")
    else:
        coded(entity, "code", a.codes, a.text)


def _code(parent: etree._Element, tag: str, key: str, translation: str | None = None) -> etree._Element:
    c = _CODES[key]
    el = sub(parent, tag, code=c["code"], codeSystem=c["system"], displayName=c["display"])
    if translation:
        t = _CODES[translation]
        sub(el, "translation", code=t["code"], codeSystem=t["system"], displayName=t["display"])
    return el
