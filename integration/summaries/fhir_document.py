"""The summary as a FHIR R4 document Bundle: Composition first, then every resource it references.

Rules (clinical-standards.md section 7; R4 bundle bdl-7/9/10/11): type `document`, identifier with system
and value (new per content), timestamp >= Composition.date, fullUrl absolute and unique. The Composition
emulates the C-CDA on FHIR Consultation Note: type LOINC 11488-4, sections coded with the LOINC codes of
section 6.2/7 (all marked V), each with narrative and entries, or an emptyReason when nothing is recorded.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from integration.summaries import sections as text
from integration.summaries.model import Summary
from integration.summaries.xhtml import fhir_div

LOINC = "http://loinc.org"
_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
# Section key -> LOINC code, all V in clinical-standards.md 6.2 and 7. No display: the reference gives
# the codes, not their LOINC display strings, and a coding is valid without one.
SECTION_CODES: dict[str, str] = {
    "referral": "42349-1",
    "plan": "51847-2",
    "course": "10164-2",
    "outcomes": "30954-2",
    "medications": "29549-3",
    "vitals": "8716-3",
    "problems": "11450-4",
    "allergies": "48765-2",
}
CONSULT_NOTE = {"system": LOINC, "code": "11488-4", "display": "Consult note"}
_SORTED = orjson.OPT_SORT_KEYS
_NAMESPACE = uuid.UUID("6f3c2a7e-51b4-4d0e-9a51-2f6f1c3b8d10")  # fixed: ids are stable across runs


def document_bundle(
    summary: Summary, resources: Mapping[str, Mapping[str, Any]], *, base_url: str
) -> dict[str, Any]:
    """The document Bundle; `resources` maps `Type/id` to every resource the document may include."""
    entries = _section_entries(summary)
    composition = _composition(summary, entries, base_url)
    included = _closure(composition, resources)
    digest = _digest(composition, [resources[ref] for ref in included])
    composition["id"] = str(uuid.uuid5(_NAMESPACE, f"composition|{digest}"))
    composition["identifier"] = {"system": f"{base_url}/sid/treatment-summary", "value": composition["id"]}
    bundle_id = str(uuid.uuid5(_NAMESPACE, f"bundle|{digest}"))
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "identifier": {
            "system": f"{base_url}/sid/treatment-summary-bundle",
            "value": f"urn:uuid:{bundle_id}",
        },
        "type": "document",
        "timestamp": summary.generated_at.isoformat(),
        "entry": [
            {"fullUrl": f"{base_url}/Composition/{composition['id']}", "resource": composition},
            *({"fullUrl": f"{base_url}/{ref}", "resource": resources[ref]} for ref in included),
        ],
    }


def _section_entries(summary: Summary) -> dict[str, list[str]]:
    """The resources behind each section, in display order, without repeats."""
    s = summary.sessions
    raw: dict[str, list[str | None]] = {
        "referral": [summary.referral.reference if summary.referral else None],
        "plan": [
            *(sig.reference for sig in summary.safety_signals),
            *(e.reference for x in s for e in x.adverse_events),
            *(x.dissociation.reference for x in s if x.dissociation is not None),
            summary.plan.care_plan,
        ],
        "course": [x.procedure or x.encounter for x in s],
        "outcomes": [sc.reference for o in summary.outcomes for sc in o.scores],
        "medications": [a.reference for x in s for a in ((x.ketamine,) if x.ketamine else ()) + x.adjuncts],
        "vitals": [
            r.reference
            for x in s
            for r in (x.peak_systolic, x.peak_heart_rate, x.lowest_spo2)
            if r is not None
        ],
        "problems": [p.reference for p in summary.problems],
        "allergies": [a.reference for a in summary.allergies],
    }
    return {key: list(dict.fromkeys(r for r in refs if r)) for key, refs in raw.items()}


def _section_texts(summary: Summary) -> dict[str, text.SectionText]:
    return {
        "referral": text.referral(summary),
        "plan": text.assessment_and_plan(summary),
        "course": text.course(summary),
        "outcomes": text.outcomes(summary),
        "medications": text.medications(summary),
        "vitals": text.vitals(summary),
        "problems": text.problems(summary),
        "allergies": text.allergies(summary),
    }


def _composition(summary: Summary, entries: dict[str, list[str]], base_url: str) -> dict[str, Any]:
    sections = []
    for key, section in _section_texts(summary).items():
        out: dict[str, Any] = {
            "title": section.title,
            "code": {"coding": [{"system": LOINC, "code": SECTION_CODES[key]}]},
            "text": {"status": "generated", "div": fhir_div(section)},
        }
        if entries[key]:
            out["entry"] = [{"reference": ref} for ref in entries[key]]
        else:
            out["emptyReason"] = {
                "coding": [{"system": _EMPTY_REASON, "code": "nilknown", "display": "Nil Known"}]
            }
        sections.append(out)
    org = summary.clinic.organization_reference
    overview = text.SectionText(
        "overview",
        "Treatment summary",
        (
            f"Treatment summary for {summary.patient.name}, {text.period_text(summary)}:"
            f" {len(summary.sessions)} session(s), cumulative ketamine"
            f" {text.number(summary.ketamine_total_mg, 'mg')}, {len(summary.safety_signals)} PHQ-9 item-9"
            f" safety signal(s). From {summary.clinic.name}.",
        ),
    )
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "text": {"status": "generated", "div": fhir_div(overview)},
        "status": "final",
        "type": {"coding": [CONSULT_NOTE]},
        "subject": {"reference": summary.patient.reference, "display": summary.patient.name},
        "date": summary.generated_at.isoformat(),
        "author": [{"reference": summary.attending.reference}] if summary.attending else [],
        "title": f"Treatment summary: {text.period_text(summary)}",
        "custodian": {"reference": org, "display": summary.clinic.name},
        "section": sections,
    }
    composition["author"].append({"reference": org, "display": summary.clinic.name})
    if summary.sessions:
        composition["encounter"] = {"reference": summary.sessions[-1].encounter}
    if summary.period.start or summary.period.end:
        period: dict[str, str] = {}
        if summary.period.start:
            period["start"] = summary.period.start.isoformat()
        if summary.period.end:
            period["end"] = summary.period.end.isoformat()
        composition["event"] = [{"period": period}]
    return composition


def references(node: Any) -> list[str]:
    """Every relative literal reference (`Type/id`) inside a resource, in document order."""
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and "/" in ref and not ref.startswith(("#", "urn:", "http")):
            found.append(ref)
        for value in node.values():
            found.extend(references(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(references(value))
    return found


def _closure(composition: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The Composition's references and, transitively, theirs, as far as the given resources reach."""
    ordered: list[str] = []
    seen: set[str] = set()
    queue = references(composition)
    while queue:
        ref = queue.pop(0)
        if ref in seen or ref not in resources:
            continue
        seen.add(ref)
        ordered.append(ref)
        queue.extend(references(resources[ref]))
    return ordered


def _digest(composition: Mapping[str, Any], included: list[Mapping[str, Any]]) -> str:
    """A hash of the document content (generation time and store metadata left out): equal content gets
    equal ids, and a corrected resource a new identifier."""
    h = hashlib.sha256(orjson.dumps({k: v for k, v in composition.items() if k != "date"}, option=_SORTED))
    for resource in included:
        h.update(orjson.dumps({k: v for k, v in resource.items() if k != "meta"}, option=_SORTED))
    return h.hexdigest()
