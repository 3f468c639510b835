"""Payloads on both databases: DocumentReference and document Bundle against the R4 schema, the C-CDA still
XSD- and schematron-valid with its replacement header, attachments that match their data."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import orjson
import pytest
from lxml import etree

from integration.summaries.delivery_payloads import DeliveryConfigError, materialize
from integration.summaries.ledger import SummaryLedger
from integration.summaries.webhook_signing import verify
from tests.mappings.conformance import schema_errors
from tests.summaries.cda_validation import schematron_failures, xsd_errors
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import preparer, referrer, series_batch

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
V3 = {"v3": "urn:hl7-org:v3"}


@pytest.fixture
def two_versions(app, db, client, clinic_headers):
    """Version 1 of the patient's summary, then version 2 after a corrected session, for the fhir channel."""
    body = series_batch()
    post_batch(client, clinic_headers, body)
    patient = patient_fhir_id(body["patients"][0]["id"])
    prep = preparer(app, referrer())
    with db.writer() as conn:
        SummaryLedger(conn).add_due(patient, "dr-ref", ["session-completed"], NOW)
    prep.prepare_due(now=NOW)
    session = {**body["sessions"][-1], "note": "Corrected <b>note</b> & more"}
    response = client.put(
        f"/api/v1/sessions/{session['id']}",
        data=orjson.dumps(session),
        headers=clinic_headers,
        content_type="application/json",
    )
    assert response.status_code == 200
    with db.writer() as conn:
        SummaryLedger(conn).add_due(patient, "dr-ref", ["correction"], NOW)
    prep.prepare_due(now=NOW)
    with db.reader() as conn:
        first, second = SummaryLedger(conn).entries(patient_id=patient)
    return first, second


def _bodies(entry) -> list[dict]:
    return [orjson.loads(r["body"]) for r in orjson.loads(entry.payload)["requests"]]


def test_fhir_payload_is_schema_valid(two_versions):
    for entry in two_versions:
        bundle, docref = _bodies(entry)
        assert schema_errors(docref) == []
        # The Bundle shell and the Composition; included resources are the stored, already validated ones.
        assert schema_errors({**bundle, "entry": bundle["entry"][:1]}) == []
        assert (
            bundle["type"] == "document" and bundle["entry"][0]["resource"]["resourceType"] == "Composition"
        )
        assert docref["status"] == "current"
        assert docref["type"]["coding"][0]["code"] == "11488-4"
        assert docref["context"]["related"] == [{"identifier": bundle["identifier"]}]


def test_attachments_carry_size_and_sha1(two_versions):
    _bundle, docref = _bodies(two_versions[0])
    ccda, pdf = (c["attachment"] for c in docref["content"])
    assert (ccda["contentType"], pdf["contentType"]) == ("application/xml", "application/pdf")
    assert docref["content"][0]["format"]["code"] == "urn:hl7-org:sdwg:ccda-structuredBody:2.1"
    for a in (ccda, pdf):
        data = base64.b64decode(a["data"])
        assert a["size"] == len(data)
        assert a["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert base64.b64decode(pdf["data"]).startswith(b"%PDF-")


def test_superseding_version_says_what_it_replaces(two_versions):
    first, second = two_versions
    _b1, doc1 = _bodies(first)
    b2, doc2 = _bodies(second)
    assert "relatesTo" not in doc1
    assert doc2["relatesTo"] == [{"code": "replaces", "target": {"identifier": doc1["identifier"][0]}}]
    assert b2["entry"][0]["resource"]["relatesTo"][0]["targetIdentifier"]["value"] == first.document_id
    cda1 = base64.b64decode(doc1["content"][0]["attachment"]["data"])
    cda2 = base64.b64decode(doc2["content"][0]["attachment"]["data"])
    for document in (cda1, cda2):
        assert xsd_errors(document) == []
        assert schematron_failures(document)[0] == []
    one, two = etree.fromstring(cda1), etree.fromstring(cda2)
    assert one.find("v3:relatedDocument", V3) is None
    related = two.find("v3:relatedDocument", V3)
    assert related.get("typeCode") == "RPLC"
    parent = related.find("v3:parentDocument", V3)
    assert parent.find("v3:id", V3).get("root") == one.find("v3:id", V3).get("root")
    assert parent.find("v3:setId", V3).get("root") == one.find("v3:setId", V3).get("root")
    assert two.find("v3:setId", V3).get("root") == one.find("v3:setId", V3).get("root")
    assert [x.find("v3:versionNumber", V3).get("value") for x in (one, two)] == ["1", "2"]
    assert parent.find("v3:versionNumber", V3).get("value") == "1"


def test_materialize_signs_webhooks_and_needs_the_secret(two_versions, app):
    first, _ = two_versions
    fhir = materialize(orjson.loads(first.payload), referrer(), {}, now=1_700_000_000)
    assert [r.url for r in fhir] == [
        "https://referrer.example.org/fhir/Bundle",
        "https://referrer.example.org/fhir/DocumentReference",
    ]
    assert fhir[0].headers["If-None-Exist"].startswith("identifier=")
    hook = referrer(channel="webhook", url="https://hooks.example.org/in", secret_env="REF_SECRET")
    payload = {
        "channel": "webhook",
        "requests": [{"method": "POST", "path": "", "headers": {}, "body": "{}"}],
    }
    with pytest.raises(DeliveryConfigError, match="REF_SECRET"):
        materialize(payload, hook, {}, now=1_700_000_000)
    with pytest.raises(DeliveryConfigError, match="another channel"):
        materialize(orjson.loads(first.payload), hook, {"REF_SECRET": "s"}, now=1_700_000_000)
    (signed,) = materialize(payload, hook, {"REF_SECRET": "s3cret"}, now=1_700_000_000)
    assert verify("s3cret", signed.headers, signed.body, now=1_700_000_010) == 1_700_000_000


def test_a_slot_names_the_version_it_replaces():
    from integration.summaries.delivery_payloads import DocumentSlot

    slot = DocumentSlot("set-1", 3, "composition-1", 1)
    cda = slot.cda()
    assert (cda.number, cda.parent_number, cda.parent_id) == (3, 1, slot.version_id(1))
    assert cda.document_id == slot.version_id() != slot.version_id(1)
    assert DocumentSlot("set-1", 2).cda().parent_id is None
