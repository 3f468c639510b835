"""Every format from a full synthetic series stored through the real intake: FHIR document rules and R4
schema, C-CDA XSD and HL7 schematron, HTML and PDF."""

from __future__ import annotations

import base64
import re
import zlib

import pytest
from lxml import etree

from integration.summaries.ccda import consultation_note
from integration.summaries.fhir_document import document_bundle, references
from integration.summaries.html_report import render_html
from integration.summaries.pdf_report import render_pdf
from tests.mappings.conformance import schema_errors
from tests.summaries.cda_validation import schematron_failures, xsd_errors
from tests.summaries.conftest import full_series_batch, patient_fhir_id, post_batch

XHTML = "http://www.w3.org/1999/xhtml"
LOINC = "http://loinc.org"
VERIFIED_SECTION_CODES = {
    "42349-1",
    "51847-2",
    "10164-2",
    "30954-2",
    "29549-3",
    "8716-3",
    "11450-4",
    "48765-2",
}


def document_rule_errors(bundle: dict) -> list[str]:
    """R4 bdl-7/9/10/11 and the clinical-document completeness rule."""
    errors = []
    if bundle.get("type") != "document":
        errors.append("type is not document")
    ident = bundle.get("identifier", {})
    if not (ident.get("system") and ident.get("value")):
        errors.append("bdl-9: identifier needs system and value")
    if not bundle.get("timestamp"):
        errors.append("bdl-10: no timestamp")
    entries = bundle.get("entry", [])
    if not entries or entries[0]["resource"]["resourceType"] != "Composition":
        errors.append("bdl-11: first entry is not a Composition")
    urls = [e["fullUrl"] for e in entries]
    if len(urls) != len(set(urls)):
        errors.append("bdl-7: duplicate fullUrl")
    if any("/_history/" in u for u in urls):
        errors.append("bdl-8: version-specific fullUrl")
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries}
    missing = {r for e in entries for r in references(e["resource"]) if r not in present}
    if missing:
        errors.append(f"unresolved references: {sorted(missing)[:5]}")
    composition = entries[0]["resource"] if entries else {}
    if composition.get("date", "") > bundle.get("timestamp", ""):
        errors.append("Bundle.timestamp before Composition.date")
    return errors


def test_fhir_document_is_valid_and_complete(built):
    s = built()
    bundle = document_bundle(s.summary, s.resources, base_url=s.base_url)
    assert document_rule_errors(bundle) == []
    # The Bundle shell and the Composition against the R4 schema; the included resources are the stored
    # bytes, validated when they were mapped (and validating all of them here would cost seconds).
    assert schema_errors({**bundle, "entry": bundle["entry"][:1]}) == []
    composition = bundle["entry"][0]["resource"]
    assert schema_errors(composition) == []
    assert composition["type"]["coding"][0]["code"] == "11488-4"
    codes = [sec["code"]["coding"][0]["code"] for sec in composition["section"]]
    assert set(codes) <= VERIFIED_SECTION_CODES and {"48765-2", "10164-2", "11450-4"} <= set(codes)
    for section in composition["section"]:
        div = etree.fromstring(section["text"]["div"])
        assert div.tag == f"{{{XHTML}}}div"
        assert ("entry" in section) != ("emptyReason" in section)
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Organization", "MedicationAdministration", "Observation", "Encounter"} <= types


def test_fhir_document_identifier_follows_content(built, client, clinic_headers, series):
    first = built()
    a = document_bundle(first.summary, first.resources, base_url=first.base_url)
    again = document_bundle(first.summary, first.resources, base_url=first.base_url)
    assert a["identifier"] == again["identifier"]
    session = next(x for x in series["sessions"] if x["patient_id"] == series["patients"][0]["id"])
    session["vitals"][0]["heart_rate"] = 170  # becomes the session's peak, which the document includes
    assert (
        client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers).status_code
        == 200
    )
    second = built()
    b = document_bundle(second.summary, second.resources, base_url=second.base_url)
    assert b["identifier"]["value"] != a["identifier"]["value"]


def test_ccda_is_schema_valid_and_free_of_schematron_errors(built, series):
    # Three patients: a pain, a depression and a PTSD course, with and without recorded allergies.
    for patient in series["patients"]:
        s = built(patient_fhir_id(patient["id"]))
        document = consultation_note(s.summary, s.resources)
        assert xsd_errors(document) == [], patient["id"]
        errors, _unchecked = schematron_failures(document)
        assert errors == [], patient["id"]


def test_ccda_has_coded_entries(built):
    s = built()
    doc = etree.fromstring(consultation_note(s.summary, s.resources))
    ns = {"v3": "urn:hl7-org:v3"}

    def in_section(code: str, xpath: str) -> list:
        return doc.xpath(f"//v3:section[v3:code/@code='{code}']{xpath}", namespaces=ns)

    ketamine = in_section("29549-3", "//v3:manufacturedMaterial/v3:code[@code='6130']")
    assert len(ketamine) == len([x for x in s.summary.sessions if x.ketamine])
    assert in_section("29549-3", "//v3:routeCode[@code='C38276']")
    assert in_section("8716-3", "//v3:observation/v3:code[@code='8480-6']")
    phq9 = in_section("30954-2", "//v3:observation[v3:code/@code='44261-6']/v3:value/@value")
    assert [float(v) for v in phq9] == [
        x.value for o in s.summary.outcomes if o.key == "phq9" for x in o.scores
    ]
    assert in_section("11450-4", "//v3:observation/v3:value")
    assert in_section("48765-2", "//v3:observation[@negationInd='true' or v3:value/@code]")


def test_html_and_pdf_for_people(built):
    s = built()
    html = render_html(s.summary)
    assert html.startswith("<!DOCTYPE html>")
    assert (
        html.count('src="data:image/svg+xml;base64,') == len([o for o in s.summary.outcomes if o.scores]) + 1
    )
    assert s.summary.patient.name in html
    pdf = render_pdf(s.summary)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert render_pdf(s.summary) == pdf  # invariant: bytes depend on the content only
    text = pdf_text(pdf)
    assert "Outcome measures" in text and "Ketamine" in text
    assert pdf.count(b"/Subtype /Image") >= len(s.summary.outcomes) + 1


def pdf_text(pdf: bytes) -> str:
    """The text-showing operands of every content stream (reportlab: ASCII85 then Flate), unescaped."""
    chunks = []
    for raw in re.findall(rb"\nstream\r?\n(.*?)~>\s*endstream", pdf, re.S):
        try:
            chunks.append(zlib.decompress(base64.a85decode(raw, adobe=False)))
        except (ValueError, zlib.error):
            chunks.append(raw)
    shown = re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", b"\n".join(chunks))
    return " ".join(re.sub(rb"\\(.)", rb"\1", s).decode("latin-1") for s in shown)


def test_safety_signal_leads_every_format(built, series):
    s = built()
    if not s.summary.safety_signals:
        pytest.skip("this seed gave the first patient no item-9 signal")
    html = render_html(s.summary)
    assert html.index('class="alert"') < html.index("<h2>")
    bundle = document_bundle(s.summary, s.resources, base_url=s.base_url)
    plan = next(
        x for x in bundle["entry"][0]["resource"]["section"] if x["code"]["coding"][0]["code"] == "51847-2"
    )
    assert "SAFETY SIGNAL" in plan["text"]["div"].split("</b>")[0]
    assert {e["reference"] for e in plan["entry"]} >= {x.reference for x in s.summary.safety_signals}


def test_a_patient_with_nothing_recorded_yet(client, clinic_headers, builder):
    """No sessions, no referral, no scores: every format still renders and validates, with null flavors
    and empty reasons instead of invented content."""
    body = full_series_batch()
    body = {"practitioners": body["practitioners"], "patients": body["patients"][:1]}
    post_batch(client, clinic_headers, body)
    s = builder(patient_fhir_id(body["patients"][0]["id"]))
    assert s.summary.sessions == () and s.summary.referral is None
    bundle = document_bundle(s.summary, s.resources, base_url=s.base_url)
    assert document_rule_errors(bundle) == []
    assert schema_errors(bundle) == []
    assert any("emptyReason" in x for x in bundle["entry"][0]["resource"]["section"])
    document = consultation_note(s.summary, s.resources)
    assert xsd_errors(document) == []
    assert schematron_failures(document)[0] == []
    assert b'nullFlavor="NI"' in document
    assert render_html(s.summary).startswith("<!DOCTYPE html>")
    assert render_pdf(s.summary).startswith(b"%PDF-")
