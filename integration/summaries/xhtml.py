"""Section texts as XML element trees: XHTML for FHIR narrative and HTML, CDA narrative blocks for C-CDA.

Built with lxml, so every free-text string becomes a text node and is escaped on serialization.
"""

from __future__ import annotations

from lxml import etree

from integration.summaries.sections import SectionText

XHTML_NS = "http://www.w3.org/1999/xhtml"


def fhir_div(section: SectionText, empty_text: str = "Nothing recorded.") -> str:
    """The FHIR narrative `div` (XHTML namespace, only elements FHIR narrative allows)."""
    div = etree.Element(f"{{{XHTML_NS}}}div", nsmap={None: XHTML_NS})
    _fill(div, section, f"{{{XHTML_NS}}}", empty_text, cda=False)
    return etree.tostring(div, encoding="unicode")


def cda_text(parent: etree._Element, section: SectionText, ns: str, empty_text: str) -> etree._Element:
    """The CDA `text` narrative block of a section (CDA NarrativeBlock elements)."""
    text = etree.SubElement(parent, f"{{{ns}}}text")
    _fill(text, section, f"{{{ns}}}", empty_text, cda=True)
    return text


def _fill(root: etree._Element, section: SectionText, q: str, empty_text: str, *, cda: bool) -> None:
    for alert in section.alerts:
        p = etree.SubElement(root, f"{q}paragraph" if cda else f"{q}p")
        if cda:
            content = etree.SubElement(p, f"{q}content", styleCode="Bold")
            content.text = alert
        else:
            b = etree.SubElement(p, f"{q}b")
            b.text = alert
    for para in section.paragraphs:
        p = etree.SubElement(root, f"{q}paragraph" if cda else f"{q}p")
        p.text = para
    for table in section.tables:
        t = etree.SubElement(root, f"{q}table")
        head = etree.SubElement(etree.SubElement(t, f"{q}thead"), f"{q}tr")
        for h in table.headers:
            etree.SubElement(head, f"{q}th").text = h
        body = etree.SubElement(t, f"{q}tbody")
        for row in table.rows:
            tr = etree.SubElement(body, f"{q}tr")
            for cell in row:
                etree.SubElement(tr, f"{q}td").text = cell
    if section.empty:
        p = etree.SubElement(root, f"{q}paragraph" if cda else f"{q}p")
        p.text = empty_text
