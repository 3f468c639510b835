"""Turn a clinic XML export into the record dicts the JSON API takes, so both go through one validation.

Shape (shared/spec/clinic-records.md, "XML"): root `<clinicExport version="1">` holding `<patient>`,
`<practitioner>`, `<session>`, `<assessment>` (standalone) and `<referral>` elements. Every field is a child
element of the same name; nested objects (`<address>`, `<consent>`, `<indication>`, `<series>`, `<dose>`,
`<rate>`, `<wasted>`, `<substance>`, `<reason>`) hold their fields the same way. A list repeats its item
element directly inside the record, with no wrapper: `<given>`, `<line>` (in `<address>`), `<vitals>`, and the
singular names `<identifier>` (identifiers), `<allergy>` (allergies), `<share_with_destination>` (consent's
share_with_destinations), `<medication>`, `<assessment>` and `<adverse_event>` (inside `<session>`); see
ITEM_ELEMENTS. Maps are `<answers><q1>2</q1>...</answers>`.

Values are converted by the field's type in the contract's field tables (validation/tables.py, the one
source of truth): integer and number fields become int when the text is an integer literal and float when
it is a decimal one; boolean fields accept `true`/`false`; answers become ints. Text that does not convert
is kept as a string, and unknown elements are kept as strings under their own name, so validation reports
them.
An empty element is an empty string. Nothing here validates records; a ReaderError names only problems of
the file itself (not well-formed, DOCTYPE or entity declarations, wrong root or version, misplaced elements).
"""

from __future__ import annotations

import re

from lxml import etree

from integration.ingest.export_fields import SHAPES, ReaderError, number, typed
from integration.ingest.validation.engine import Field, Shape

ROOT, VERSION = "clinicExport", "1"
# List field -> the element (XML) each item is written as; lists not named here repeat their own name.
ITEM_ELEMENTS = {
    "identifiers": "identifier",
    "allergies": "allergy",
    "share_with_destinations": "share_with_destination",
    "medications": "medication",
    "assessments": "assessment",
    "adverse_events": "adverse_event",
}
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)\b")
_DTD_PROBLEM = "the document {} (a DTD); DTDs and entities are not allowed"
_POSITION = re.compile(r", line \d+, column \d+$")


def read_xml(data: bytes, *, name: str = "export.xml") -> list[tuple[str, dict]]:
    """The (kind, record) pairs of an export, in document order; ReaderError when the file is malformed."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        if _DECLARATION.search(data) or _DECLARATION.search(
            data.decode("utf-16", "ignore").encode("utf-8", "ignore")
        ):
            # libxml2 stops some of these (entity amplification) before the DOCTYPE check below can run.
            raise ReaderError(name, _DTD_PROBLEM.format("declares entities or a DOCTYPE")) from None
        line, column = exc.position if exc.position else (None, None)
        message = _POSITION.sub("", exc.msg)
        raise ReaderError(
            name, f"not well-formed XML: {message}", line=line, column=f"column {column}"
        ) from None
    docinfo = root.getroottree().docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise ReaderError(name, _DTD_PROBLEM.format("declares entities"))
    if docinfo.doctype or dtd is not None or docinfo.system_url or docinfo.public_id:
        raise ReaderError(name, _DTD_PROBLEM.format("has a DOCTYPE"))
    if root.tag != ROOT:
        raise ReaderError(name, f"the root element is <{root.tag}>, expected <{ROOT}>", line=root.sourceline)
    if root.get("version") != VERSION:
        found = root.get("version")
        message = f"<{ROOT}> version is {found!r}, expected {VERSION!r}" if found else "no version attribute"
        raise ReaderError(name, message, line=root.sourceline)
    out: list[tuple[str, dict]] = []
    for el in _elements(root, name):
        shape = SHAPES.get(el.tag)
        if shape is None:
            expected = ", ".join(f"<{k}>" for k in SHAPES)
            raise ReaderError(name, f"unexpected element <{el.tag}>; expected {expected}", line=el.sourceline)
        record = _object(el, shape, name)
        out.append((el.tag, record if isinstance(record, dict) else {}))
    return out


def _elements(parent: etree._Element, name: str) -> list[etree._Element]:
    """The child elements of `parent` (comments and processing instructions skipped), checked for form."""
    children = [c for c in parent if isinstance(c.tag, str)]
    for child in children:
        if etree.QName(child).namespace is not None:
            raise ReaderError(name, f"namespaced element <{child.tag}> is not allowed", line=child.sourceline)
        if child.attrib:
            attrs = ", ".join(child.attrib)
            raise ReaderError(
                name, f"<{child.tag}> has attributes ({attrs}); fields are elements", line=child.sourceline
            )
    return children


def _object(el: etree._Element, shape: Shape | None, name: str) -> object:
    children = _elements(el, name)
    if not children and (el.text or "").strip():
        return el.text  # text where an object belongs: kept, so validation reports its type
    _no_stray_text(el, children, name)
    by_element = (
        {ITEM_ELEMENTS.get(f.name, f.name): f for f in shape.fields.values() if f.type == "list"}
        if shape
        else {}
    )
    out: dict[str, object] = {}
    single: set[str] = set()
    for child in children:
        tag = child.tag
        list_field = by_element.get(tag)
        if list_field is not None:
            if list_field.name in single:
                raise ReaderError(
                    name, f"<{tag}> mixes with a <{list_field.name}> element", line=child.sourceline
                )
            items = out.setdefault(list_field.name, [])
            items.append(_value(child, list_field.item, name))  # type: ignore[union-attr]
            continue
        if tag in out:
            raise ReaderError(name, f"<{tag}> appears more than once in <{el.tag}>", line=child.sourceline)
        field = shape.fields.get(tag) if shape else None
        out[tag] = _value(child, field, name)
        single.add(tag)
    return out


def _value(el: etree._Element, field: Field | None, name: str) -> object:
    if field is None:  # unknown: its text, so validation names the field
        return "".join(el.itertext())
    if field.type == "object":
        return _object(el, field.shape, name)
    if field.type == "map":
        return _map(el, name)
    if field.type == "list":  # a list element inside a list: not in the format
        raise ReaderError(name, f"<{el.tag}> cannot nest a list", line=el.sourceline)
    if _elements(el, name):
        raise ReaderError(name, f"<{el.tag}> holds elements, expected a text value", line=el.sourceline)
    return typed(field, el.text or "")


def _map(el: etree._Element, name: str) -> object:
    children = _elements(el, name)
    if not children and (el.text or "").strip():
        return el.text
    _no_stray_text(el, children, name)
    out: dict[str, object] = {}
    for child in children:
        if child.tag in out:
            raise ReaderError(
                name, f"<{child.tag}> appears more than once in <{el.tag}>", line=child.sourceline
            )
        if _elements(child, name):
            raise ReaderError(name, f"<{child.tag}> holds elements, expected a number", line=child.sourceline)
        out[child.tag] = number(child.text or "")
    return out


def _no_stray_text(el: etree._Element, children: list[etree._Element], name: str) -> None:
    stray = [el.text, *(c.tail for c in children)]
    if any(t and t.strip() for t in stray):
        raise ReaderError(name, f"<{el.tag}> mixes text with elements", line=el.sourceline)
