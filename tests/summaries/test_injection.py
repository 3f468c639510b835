"""Markup in clinic free text comes out inert in every format (escaped text, never elements)."""

from __future__ import annotations

import pytest
from lxml import etree

from integration.summaries.ccda import consultation_note
from integration.summaries.fhir_document import document_bundle
from integration.summaries.html_report import render_html
from integration.summaries.pdf_report import render_pdf
from tests.summaries.test_documents import pdf_text

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp; ]]><b>bold</b>'


@pytest.fixture
def injected(client, clinic_headers, one_series, one_patient, builder):
    session = next(s for s in one_series["sessions"] if s["status"] == "completed")
    session["note"] = PAYLOAD
    response = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert response.status_code == 200, response.json
    s = builder(one_patient)
    assert any(PAYLOAD in " ".join(x.notes) for x in s.summary.sessions)
    return s


def _no_active_elements(root: etree._Element, allowed: frozenset[str] = frozenset()) -> None:
    names = {etree.QName(el).localname for el in root.iter() if isinstance(el.tag, str)}
    assert not names & ({"script", "img", "b"} - allowed), names
    assert not any(k.startswith("on") for el in root.iter() if isinstance(el.tag, str) for k in el.attrib)


def test_markup_in_a_clinic_note_is_inert_in_every_format(injected):
    _check_fhir_narrative(injected)
    _check_ccda_narrative(injected)
    _check_html(injected)
    _check_pdf(injected)


def _check_fhir_narrative(injected):
    bundle = document_bundle(injected.summary, injected.resources, base_url=injected.base_url)
    course = next(
        x for x in bundle["entry"][0]["resource"]["section"] if x["code"]["coding"][0]["code"] == "10164-2"
    )
    div = etree.fromstring(course["text"]["div"])
    _no_active_elements(div)
    assert PAYLOAD in "".join(div.itertext())


def _check_ccda_narrative(injected):
    doc = etree.fromstring(consultation_note(injected.summary, injected.resources))
    _no_active_elements(doc)
    assert PAYLOAD in "".join(doc.itertext())


def _check_html(injected):
    html = render_html(injected.summary)
    assert "<script" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    page = etree.fromstring(html.encode(), etree.HTMLParser(no_network=True))
    _no_active_elements(page, allowed=frozenset({"img"}))  # the charts, and only them:
    assert all(img.get("src").startswith("data:image/svg+xml;base64,") for img in page.iter("img"))


def _check_pdf(injected):
    # reportlab parses Paragraph text as markup: the payload must arrive as literal characters.
    # (reportlab draws entities as separate text runs, so compare without the run breaks)
    text = "".join(pdf_text(render_pdf(injected.summary)).split())
    assert '<script>alert("x")</script>' in text and "<b>bold</b>" in text
