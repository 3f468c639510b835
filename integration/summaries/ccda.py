"""The summary as a C-CDA R2.1 Consultation Note (2.16.840.1.113883.10.20.22.1.4:2015-08-01), built with lxml.

Header: US Realm Header 2015-08-01. Sections: every one the Consultation Note requires (Reason for Referral,
History of Present Illness, Allergies, Problems, Assessment and Plan), plus Medications Administered, Vital
Signs and Results with coded entries. A required section with nothing recorded carries nullFlavor NI;
missing demographics carry nullFlavor UNK. Templates and codes: clinical-standards.md section 6.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from integration.summaries import ccda_entries as entries
from integration.summaries import sections as text
from integration.summaries.cda_common import (
    LOINC_OID,
    NSMAP,
    entry_id,
    q,
    sub,
    system_root,
    template,
    time_el,
    ts,
)
from integration.summaries.model import Summary
from integration.summaries.xhtml import cda_text

Resource = Mapping[str, Any]
_GENDER = {"male": "M", "female": "F"}


@dataclass(frozen=True, slots=True)
class CdaVersion:
    """The document's place in its set (CDA R2 header setId/versionNumber), ids as UUID roots.

    `parent_id` names the version this one replaces (number `parent_number`): it becomes relatedDocument
    typeCode RPLC with the parent's id, setId and versionNumber, as CDA R2 describes a replacement.
    """

    document_id: str
    set_id: str
    number: int
    parent_id: str | None = None
    parent_number: int | None = None


def consultation_note(
    summary: Summary, resources: Mapping[str, Resource], version: CdaVersion | None = None
) -> bytes:
    """The C-CDA document as XML bytes; `resources` (keyed `Type/id`) gives addresses and contacts;
    `version` (for delivery) gives the id, set and the replaced parent."""
    doc = etree.Element(q("ClinicalDocument"), nsmap=NSMAP)
    sub(doc, "realmCode", code="US")
    sub(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    template(doc, "2.16.840.1.113883.10.20.22.1.1", "2015-08-01")
    template(doc, "2.16.840.1.113883.10.20.22.1.4", "2015-08-01")
    if version is None:
        entry_id(doc, f"ccda/{summary.patient.reference}/{summary.generated_at.isoformat()}")
    else:
        sub(doc, "id", root=version.document_id.upper())
    sub(doc, "code", code="11488-4", codeSystem=LOINC_OID, displayName="Consult note")
    sub(doc, "title").text = f"Treatment summary: {text.period_text(summary)}"
    sub(doc, "effectiveTime", value=ts(summary.generated_at))
    sub(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    sub(doc, "languageCode", code="en-US")
    if version is not None:
        sub(doc, "setId", root=version.set_id.upper())
        sub(doc, "versionNumber", value=str(version.number))
    _record_target(doc, resources[summary.patient.reference])
    _author(doc, summary, resources)
    _custodian(doc, summary, resources)
    _in_fulfillment_of(doc, summary, resources)
    if version is not None and version.parent_id is not None:
        parent = sub(sub(doc, "relatedDocument", typeCode="RPLC"), "parentDocument")
        sub(parent, "id", root=version.parent_id.upper())
        sub(parent, "setId", root=version.set_id.upper())
        sub(parent, "versionNumber", value=str(version.parent_number or version.number - 1))
    _component_of(doc, summary, resources)
    body = sub(sub(doc, "component"), "structuredBody")
    for build in _SECTIONS:
        build(sub(body, "component"), summary)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


# --- header --------------------------------------------------------------------------------------------


def _ids(parent: etree._Element, resource: Resource) -> None:
    identifiers = [i for i in resource.get("identifier", []) if i.get("system") and i.get("value")]
    for i in identifiers:
        sub(parent, "id", root=system_root(i["system"]), extension=i["value"])
    if not identifiers:
        sub(parent, "id", nullFlavor="NI")


def _addr(parent: etree._Element, resource: Resource | None) -> None:
    addresses = (resource or {}).get("address", [])
    if not addresses:
        sub(parent, "addr", nullFlavor="UNK")
        return
    a = addresses[0]
    addr = sub(parent, "addr", use="HP" if resource and resource["resourceType"] == "Patient" else "WP")
    for line in a.get("line", []):
        sub(addr, "streetAddressLine").text = line
    for tag, key in (
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postalCode"),
        ("country", "country"),
    ):
        if a.get(key):
            sub(addr, tag).text = a[key]


def _telecoms(parent: etree._Element, resource: Resource | None, *, one: bool = False) -> None:
    scheme = {"phone": "tel:", "email": "mailto:", "fax": "fax:"}
    telecoms = [
        t for t in (resource or {}).get("telecom", []) if t.get("system") in scheme and t.get("value")
    ]
    if one:
        telecoms = telecoms[:1]
    for t in telecoms:
        value = t["value"].replace(" ", "") if t["system"] != "email" else t["value"]
        sub(
            parent, "telecom", value=scheme[t["system"]] + value, use="WP" if t.get("use") == "work" else "HP"
        )
    if not telecoms:
        sub(parent, "telecom", nullFlavor="UNK")


def _name(parent: etree._Element, resource: Resource | None) -> None:
    names = (resource or {}).get("name", [])
    if not names:
        sub(parent, "name", nullFlavor="UNK")
        return
    n = names[0]
    name = sub(parent, "name")
    for given in n.get("given", []):
        sub(name, "given").text = given
    if n.get("family"):
        sub(name, "family").text = n["family"]


def _record_target(doc: etree._Element, patient: Resource) -> None:
    role = sub(sub(doc, "recordTarget"), "patientRole")
    _ids(role, patient)
    _addr(role, patient)
    _telecoms(role, patient)
    person = sub(role, "patient")
    _name(person, patient)
    gender = _GENDER.get(patient.get("gender", ""))
    if gender:
        sub(person, "administrativeGenderCode", code=gender, codeSystem="2.16.840.1.113883.5.1")
    else:
        sub(person, "administrativeGenderCode", nullFlavor="UNK")
    if patient.get("birthDate"):
        sub(person, "birthTime", value=patient["birthDate"].replace("-", ""))
    else:
        sub(person, "birthTime", nullFlavor="UNK")
    # Race and ethnicity are not in the clinic record: required elements, so nullFlavor UNK.
    sub(person, "raceCode", nullFlavor="UNK")
    sub(person, "ethnicGroupCode", nullFlavor="UNK")


def _organization(parent: etree._Element, tag: str, org: Resource) -> etree._Element:
    el = sub(parent, tag)
    _ids(el, org)
    sub(el, "name").text = org.get("name", "")
    _telecoms(el, org, one=True)
    _addr(el, org)
    return el


def _author(doc: etree._Element, summary: Summary, resources: Mapping[str, Resource]) -> None:
    author = sub(doc, "author")
    time_el(author, "time", summary.generated_at)
    assigned = sub(author, "assignedAuthor")
    org = resources[summary.clinic.organization_reference]
    if summary.attending is not None:
        practitioner = resources.get(summary.attending.reference)
        _ids(assigned, practitioner or {})
        _addr(assigned, org)
        _telecoms(assigned, practitioner)
        _name(sub(assigned, "assignedPerson"), practitioner)
    else:
        # No attending recorded: the clinic's charting system is the author.
        _ids(assigned, org)
        _addr(assigned, org)
        _telecoms(assigned, org)
        device = sub(assigned, "assignedAuthoringDevice")
        sub(device, "manufacturerModelName").text = "Horizon Integration"
        sub(device, "softwareName").text = "Horizon Integration treatment summary"
    _organization(assigned, "representedOrganization", org)


def _custodian(doc: etree._Element, summary: Summary, resources: Mapping[str, Resource]) -> None:
    assigned = sub(sub(doc, "custodian"), "assignedCustodian")
    _organization(
        assigned, "representedCustodianOrganization", resources[summary.clinic.organization_reference]
    )


def _in_fulfillment_of(doc: etree._Element, summary: Summary, resources: Mapping[str, Resource]) -> None:
    order = sub(sub(doc, "inFulfillmentOf"), "order")
    if summary.referral is None:
        sub(order, "id", nullFlavor="NI")
        return
    _ids(order, resources[summary.referral.reference])


def _component_of(doc: etree._Element, summary: Summary, resources: Mapping[str, Resource]) -> None:
    encounter = sub(sub(doc, "componentOf"), "encompassingEncounter")
    if not summary.sessions:
        sub(encounter, "id", nullFlavor="NI")
        sub(encounter, "effectiveTime", nullFlavor="UNK")
        return
    last = summary.sessions[-1]
    _ids(encounter, resources[last.encounter])
    eff = sub(encounter, "effectiveTime")
    time_el(eff, "low", last.start)
    time_el(eff, "high", last.end)


# --- sections ------------------------------------------------------------------------------------------


def _section(
    component: etree._Element,
    root: str,
    extension: str | None,
    code: str,
    content: text.SectionText,
    *,
    null_when_empty: bool = False,
) -> etree._Element:
    section = sub(component, "section")
    if null_when_empty and content.empty:
        section.set("nullFlavor", "NI")
    template(section, root, extension)
    sub(section, "code", code=code, codeSystem=LOINC_OID)
    sub(section, "title").text = content.title
    cda_text(section, content, "urn:hl7-org:v3", "No information recorded.")
    return section


def _referral(component: etree._Element, s: Summary) -> None:
    _section(
        component,
        "1.3.6.1.4.1.19376.1.5.3.1.3.1",
        "2014-06-09",
        "42349-1",
        text.referral(s),
    )


def _hpi(component: etree._Element, s: Summary) -> None:
    _section(
        component,
        "1.3.6.1.4.1.19376.1.5.3.1.3.4",
        None,
        "10164-2",
        text.course(s),
    )


def _allergies(component: etree._Element, s: Summary) -> None:
    content = text.allergies(s)
    section = _section(
        component,
        "2.16.840.1.113883.10.20.22.2.6.1",
        "2015-08-01",
        "48765-2",
        content,
        null_when_empty=True,
    )
    for a in s.allergies:
        entries.allergy_concern(sub(section, "entry", typeCode="DRIV"), a)


def _problems(component: etree._Element, s: Summary) -> None:
    section = _section(
        component,
        "2.16.840.1.113883.10.20.22.2.5.1",
        "2015-08-01",
        "11450-4",
        text.problems(s),
        null_when_empty=True,
    )
    for p in s.problems:
        entries.problem_concern(sub(section, "entry", typeCode="DRIV"), p)


def _medications(component: etree._Element, s: Summary) -> None:
    section = _section(
        component,
        "2.16.840.1.113883.10.20.22.2.38",
        "2014-06-09",
        "29549-3",
        text.medications(s),
    )
    for session in s.sessions:
        for a in ((session.ketamine,) if session.ketamine else ()) + session.adjuncts:
            entries.medication_activity(sub(section, "entry", typeCode="DRIV"), a)


def _vitals(component: etree._Element, s: Summary) -> None:
    measured = [x for x in s.sessions if x.peak_systolic or x.peak_heart_rate or x.lowest_spo2]
    content = text.vitals(s) if measured else text.SectionText("vitals", "Vital signs")
    section = _section(
        component,
        "2.16.840.1.113883.10.20.22.2.4.1",
        "2015-08-01",
        "8716-3",
        content,
        null_when_empty=True,
    )
    for session in measured:
        entries.vital_signs_organizer(sub(section, "entry", typeCode="DRIV"), session)


def _results(component: etree._Element, s: Summary) -> None:
    scored = [o for o in s.outcomes if o.scores]
    content = text.outcomes(s) if scored else text.SectionText("outcomes", "Outcome measures")
    section = _section(
        component,
        "2.16.840.1.113883.10.20.22.2.3.1",
        "2015-08-01",
        "30954-2",
        content,
        null_when_empty=True,
    )
    for o in scored:
        entries.result_organizer(sub(section, "entry", typeCode="DRIV"), o)


def _assessment_plan(component: etree._Element, s: Summary) -> None:
    content = text.assessment_and_plan(s)
    _section(component, "2.16.840.1.113883.10.20.22.2.9", "2014-06-09", "51847-2", content)


_SECTIONS: tuple[Callable[[etree._Element, Summary], None], ...] = (
    _referral,
    _assessment_plan,
    _hpi,
    _results,
    _medications,
    _vitals,
    _problems,
    _allergies,
)
