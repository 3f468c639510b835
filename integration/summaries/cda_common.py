"""Small CDA R2 building blocks shared by the C-CDA header, sections and entries."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from pathlib import Path

from lxml import etree

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SDTC = "urn:hl7-org:sdtc"
NSMAP = {None: V3, "xsi": XSI, "sdtc": SDTC}
LOINC_OID = "2.16.840.1.113883.6.1"
SNOMED_OID = "2.16.840.1.113883.6.96"
RXNORM_OID = "2.16.840.1.113883.6.88"
ICD10CM_OID = "2.16.840.1.113883.6.90"
NCI_OID = "2.16.840.1.113883.3.26.1.1"
ACTCODE_OID = "2.16.840.1.113883.5.4"
# FHIR code-system URI -> CDA OID (clinical-standards.md, "Code-system URIs / OIDs", all V).
SYSTEM_OIDS = {
    "http://loinc.org": LOINC_OID,
    "http://snomed.info/sct": SNOMED_OID,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM_OID,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM_OID,
}
# Identifier systems of the clinic have no assigned OID: a UUID derived from the system URI stands in as the
# II root (CDA allows a UUID root), so the same system always gives the same root.
_ROOTS = uuid.UUID("0b8e5b8e-3c4f-4f61-a1c9-7f0d2c9e4a11")


def q(tag: str) -> str:
    return f"{{{V3}}}{tag}"


def sub(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, q(tag), attrs)


def xsi_type(el: etree._Element, value: str) -> etree._Element:
    el.set(f"{{{XSI}}}type", value)
    return el


_KNOWN_ROOTS = {
    system: entry["root"]
    for system, entry in json.loads(Path(__file__).with_name("cda_codes.json").read_text())[
        "identifier_roots"
    ].items()
    if entry["mark"] == "V"
}


def system_root(system: str) -> str:
    """The II root of an identifier system: its OID where HL7 gives one (NPI), else the derived UUID."""
    return _KNOWN_ROOTS.get(system) or str(uuid.uuid5(_ROOTS, system)).upper()


def entry_id(parent: etree._Element, reference: str) -> etree._Element:
    """An II for a FHIR resource: the UUID root derived from its `Type/id`."""
    return sub(parent, "id", root=str(uuid.uuid5(_ROOTS, reference)).upper())


def ts(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%Y%m%d%H%M%S%z")
    return moment.strftime("%Y%m%d")


def time_el(parent: etree._Element, tag: str, moment: datetime | date | None) -> etree._Element:
    el = sub(parent, tag)
    if moment is None:
        el.set("nullFlavor", "UNK")
    else:
        el.set("value", ts(moment))
    return el


def template(parent: etree._Element, root: str, extension: str | None = None) -> etree._Element:
    """The templateId; a versioned (R2.1) one is preceded by its R1.1 root-only form, which C-CDA R2.1
    requires for every template that had an R1.1 version (all the versioned ones used here)."""
    if extension is None:
        return sub(parent, "templateId", root=root)
    sub(parent, "templateId", root=root)
    return sub(parent, "templateId", root=root, extension=extension)


def coded(
    parent: etree._Element, tag: str, codes: tuple[tuple[str, str], ...], text: str, *, cd_type: bool = False
) -> etree._Element:
    """A CD from FHIR codings: the first with a known OID is the code, the others translations; none known:
    nullFlavor OTH with the text, never a guessed code."""
    known = [(SYSTEM_OIDS[s], c) for s, c in codes if s in SYSTEM_OIDS]
    el = sub(parent, tag)
    if cd_type:
        xsi_type(el, "CD")
    if known:
        el.set("code", known[0][1])
        el.set("codeSystem", known[0][0])
    else:
        el.set("nullFlavor", "OTH")
    if text:
        sub(el, "originalText").text = text
    for oid, code in known[1:]:
        sub(el, "translation", code=code, codeSystem=oid)
    return el
