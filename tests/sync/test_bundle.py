"""Bundle building from stored bytes: idempotent requests, fullUrls, deletions, conditional writes."""

import orjson
import pytest

from integration.sync.bundle import EntryWrite, build, check, entry_outcomes, identifier_of, request_of

BASE = "https://ehr.example.org/fhir"
SID = "https://clinic.example.org/fhir/sid/"
PATIENT = orjson.dumps(
    {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "2"},
        "identifier": [{"system": SID + "patient", "value": "mrn 1"}],
    }
).decode()
OBS = orjson.dumps(
    {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/p1"},
        "identifier": [{"system": "urn:other", "value": "x"}],
    }
).decode()


def test_transaction_of_puts_and_deletes_keeps_stored_bytes_and_references():
    writes = [
        EntryWrite("Patient", "p1", PATIENT),
        EntryWrite("Observation", "o1", OBS),
        EntryWrite("Observation", "o2", None),
    ]
    data = build(writes, "transaction", BASE, conditional=False)
    bundle = orjson.loads(data)
    assert bundle["type"] == "transaction"
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "PUT", "url": "Patient/p1"},
        {"method": "PUT", "url": "Observation/o1"},
        {"method": "DELETE", "url": "Observation/o2"},
    ]
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/Patient/p1"
    assert bundle["entry"][1]["resource"]["subject"]["reference"] == "Patient/p1"
    assert PATIENT.encode() in data  # the stored bytes, untouched
    assert "resource" not in bundle["entry"][2]


def test_conditional_write_uses_our_identifier_and_drops_the_id():
    ident = identifier_of(PATIENT, SID)
    assert ident == (SID + "patient", "mrn 1")
    assert identifier_of(OBS, SID) is None
    write = EntryWrite("Patient", "p1", PATIENT, ident)
    method, url = request_of(write, conditional=True)
    assert method == "PUT" and url == f"Patient?identifier={SID}patient|mrn%201"
    entry = orjson.loads(build([write], "batch", BASE, conditional=True))["entry"][0]
    assert "id" not in entry["resource"] and entry["fullUrl"] == f"{BASE}/Patient/p1"
    assert request_of(EntryWrite("Observation", "o1", OBS), conditional=True)[1] == "Observation/o1"


def test_check_finds_mismatched_content():
    assert check([EntryWrite("Patient", "p1", PATIENT)]) == []
    assert "differ" in check([EntryWrite("Patient", "p2", PATIENT)])[0]
    assert "not JSON" in check([EntryWrite("Patient", "p1", "{")])[0]


def test_entry_outcomes_read_statuses_in_order():
    response = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"response": {"status": "201 Created"}},
            {"response": {"status": "422 Unprocessable", "outcome": {"resourceType": "OperationOutcome"}}},
        ],
    }
    got = entry_outcomes(response, 3)
    assert [o.status for o in got] == [201, 422, None]
    assert "OperationOutcome" in got[1].outcome
    assert [o.status for o in entry_outcomes(None, 1)] == [None]


def test_bundle_type_is_checked():
    with pytest.raises(ValueError, match="bundle_type"):
        build([], "collection", BASE, False)
