"""Validate C-CDA documents: the CDA R2 XSD (with SDTC), then HL7's C-CDA R2.1 schematron `errors` phase.

The schematron's value-set rules read `voc.xml`, which is not shipped (see its README): a stand-in with no
value sets lets the file compile, and failures that name a value set are reported apart as unchecked.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest
from lxml import etree, isoschematron

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
XSD = SHARED / "cda-schema" / "infrastructure" / "cda" / "CDA_SDTC.xsd"
SCHEMATRON = SHARED / "ccda-schematron" / "ccda-r2.1.sch"
SVRL = "http://purl.oclc.org/dsdl/svrl"
_VOC_STANDIN = b'<voc:systems xmlns:voc="http://www.lantanagroup.com/voc"/>'
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def _present(path: Path) -> Path:
    if not path.exists():  # CI has ../shared beside the clone; elsewhere the check cannot run
        pytest.skip(f"HL7's C-CDA validation files are not beside the clone ({path})")
    return path


@cache
def _xsd() -> etree.XMLSchema:
    _present(XSD)
    return etree.XMLSchema(etree.parse(str(XSD), _SAFE))


@cache
def _schematron() -> isoschematron.Schematron:
    # The compiled rules resolve document('voc.xml') against an in-memory stylesheet, so point them at an
    # absolute file instead.
    _present(SCHEMATRON)
    voc = Path(tempfile.mkdtemp(prefix="ccda-voc-")) / "voc.xml"
    voc.write_bytes(_VOC_STANDIN)
    source = SCHEMATRON.read_bytes().replace(b"document('voc.xml')", f"document('{voc.as_uri()}')".encode())
    tree = etree.ElementTree(etree.fromstring(source, _SAFE))
    return isoschematron.Schematron(tree, phase="errors", store_report=True, validate_schema=False)


def parse(document: bytes) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(document, _SAFE))


def xsd_errors(document: bytes) -> list[str]:
    schema = _xsd()
    schema.validate(parse(document))
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def schematron_failures(document: bytes) -> tuple[list[str], list[str]]:
    """(errors, unchecked): failed asserts of the errors phase; those naming a value set are unchecked."""
    sch = _schematron()
    sch.validate(parse(document))
    errors, unchecked = [], []
    for failed in sch.validation_report.getroot().iter(f"{{{SVRL}}}failed-assert"):
        message = " ".join("".join(failed.itertext()).split())
        line = f"{failed.get('location')}: {message}"
        (unchecked if "voc.xml" in (failed.get("test") or "") else errors).append(line)
    return errors, unchecked
