"""Golden documents for the first patient of the full synthetic series, compared parsed, store metadata
stripped (the generation time is frozen at a non-UTC offset). Regenerate with UPDATE_GOLDEN=1 after a
deliberate change, and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from lxml import etree

from integration.summaries.ccda import consultation_note
from integration.summaries.fhir_document import document_bundle

GOLDEN = Path(__file__).with_name("golden")


def _stripped_bundle(bundle: dict) -> dict:
    for entry in bundle["entry"]:
        entry["resource"].pop("meta", None)  # versionId and lastUpdated are the store's, not the content
    return bundle


def _canonical_xml(document: bytes) -> bytes:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    return etree.tostring(etree.fromstring(document, parser), method="c14n")


def _check(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(actual)
    assert path.exists(), f"missing golden {name}; run with UPDATE_GOLDEN=1"
    expected = path.read_bytes()
    if name.endswith(".json"):
        assert orjson.loads(actual) == orjson.loads(expected)
    else:
        assert _canonical_xml(actual) == _canonical_xml(expected)


def test_fhir_document_golden(built):
    s = built()
    bundle = _stripped_bundle(document_bundle(s.summary, s.resources, base_url=s.base_url))
    _check("fhir-document.json", orjson.dumps(bundle, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def test_ccda_golden(built):
    s = built()
    document = consultation_note(s.summary, s.resources)
    pretty = etree.tostring(
        etree.fromstring(document), pretty_print=True, xml_declaration=True, encoding="UTF-8"
    )
    _check("ccda-consultation-note.xml", pretty)
