"""Patient/$everything: the compartment from stored bytes, _type, _since, stable paging, scopes, audit."""

import random
from datetime import date
from urllib.parse import urlsplit

import orjson
import pytest
from sqlalchemy import select

from integration.ingest import synthetic
from integration.store.schema import audit_event, fhir_resource
from mappings.group import referrer_group_id
from mappings.ids import resource_id
from tests.fhir_api.test_bulk_export import load, token


@pytest.fixture
def stored(db, ctx):
    batch = synthetic.batch(seed=33, n_patients=3, sessions_per_patient=2)
    load(db, ctx, batch)
    return batch


def _compartment(db, patient_id):
    t = fhir_resource.c
    with db.reader() as conn:
        rows = conn.execute(
            select(t.resource_type, t.id, t.content).where(t.patient_id == patient_id, t.deleted.is_(False))
        )
        return {(r.resource_type, r.id): r.content for r in rows}


def _follow(client, url, headers):
    """Every entry over all pages, following next links; returns (entries, pages)."""
    entries, pages = [], 0
    while url:
        parts = urlsplit(url)
        response = client.get(f"{parts.path}?{parts.query}", headers=headers)
        assert response.status_code == 200, response.json
        bundle = response.json
        assert bundle["type"] == "searchset"
        entries += bundle.get("entry", [])
        pages += 1
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return entries, pages


def test_everything_pages_through_the_compartment_from_stored_bytes(client, db, stored):
    headers = token(client, db)
    patient = resource_id("patient", stored["patients"][0]["id"])
    compartment = _compartment(db, patient)
    first = client.get(f"/fhir/Patient/{patient}/$everything?_count=25", headers=headers)
    assert first.status_code == 200 and first.json["total"] == len(compartment)
    entries, pages = _follow(client, f"http://x/fhir/Patient/{patient}/$everything?_count=25", headers)
    assert pages == -(-len(compartment) // 25)
    got = {(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in entries}
    assert len(got) == len(entries) == len(compartment)
    assert all(orjson.loads(compartment[k]) == v for k, v in got.items())
    with db.reader() as conn:
        row = (
            conn.execute(select(audit_event).where(audit_event.c.action == "fhir.everything"))
            .mappings()
            .first()
        )
    assert row["patient_id"] == patient and row["outcome"] == 200


def test_next_links_stay_correct_while_data_arrives(client, db, ctx, stored):
    headers = token(client, db)
    patient = resource_id("patient", stored["patients"][0]["id"])
    before = set(_compartment(db, patient))
    page = client.get(f"/fhir/Patient/{patient}/$everything?_count=20", headers=headers).json
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    base = stored["sessions"][-1]
    session = synthetic._session(  # a later session of the same patient: new resources in the compartment
        random.Random(1),
        stored["patients"][0]["id"],
        50,
        date(2026, 6, 1),
        base["attending_id"],
        None,
        "completed",
    )
    load(db, ctx, {"sessions": [session]})
    assert len(_compartment(db, patient)) > len(before)
    rest, _ = _follow(client, next_url, headers)
    seen = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in page["entry"] + rest}
    assert before <= seen  # nothing that was there is skipped
    assert len(seen) == len(page["entry"]) + len(rest)  # and nothing repeats


def test_type_since_scopes_and_compartment(client, db, stored):
    headers = token(client, db)
    patient = resource_id("patient", stored["patients"][0]["id"])
    compartment = _compartment(db, patient)
    typed = client.get(f"/fhir/Patient/{patient}/$everything?_type=Patient,Encounter", headers=headers).json
    assert {e["resource"]["resourceType"] for e in typed["entry"]} == {"Patient", "Encounter"}
    assert typed["total"] == len([k for k in compartment if k[0] in ("Patient", "Encounter")])
    late = client.get(
        f"/fhir/Patient/{patient}/$everything",
        query_string={"_since": "2999-01-01T00:00:00Z"},
        headers=headers,
    )
    assert late.json["total"] == 0
    assert client.get(f"/fhir/Patient/{patient}/$everything?_type=Basic", headers=headers).status_code == 400
    assert client.get(f"/fhir/Patient/{patient}/$everything?_count=0", headers=headers).status_code == 400
    assert client.get("/fhir/Patient/nobody/$everything", headers=headers).status_code == 404
    assert client.get(f"/fhir/Patient/{patient}/$everything").status_code == 401
    narrow = token(client, db, name="narrow", scope="system/Patient.rs system/Encounter.rs")
    limited = client.get(f"/fhir/Patient/{patient}/$everything", headers=narrow).json
    assert {e["resource"]["resourceType"] for e in limited["entry"]} == {"Patient", "Encounter"}
    assert (
        client.get(f"/fhir/Patient/{patient}/$everything?_type=Observation", headers=narrow).status_code
        == 403
    )
    xml = client.get(f"/fhir/Patient/{patient}/$everything?_count=2&_format=xml", headers=headers)
    assert xml.status_code == 200 and xml.mimetype == "application/fhir+xml"


def test_a_group_restricted_client_gets_404_outside_its_group(client, db, stored):
    referrer = stored["referrals"][0]["practitioner_id"]
    inside = {r["patient_id"] for r in stored["referrals"] if r["practitioner_id"] == referrer}
    headers = token(client, db, name="referrer", group_id=referrer_group_id(referrer))
    for p in stored["patients"]:
        status = client.get(f"/fhir/Patient/{resource_id('patient', p['id'])}/$everything", headers=headers)
        assert status.status_code == (200 if p["id"] in inside else 404)


def test_capability_statement_declares_the_operations(client):
    statement = client.get("/fhir/metadata").json
    assert statement["instantiates"] == ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]
    rest = statement["rest"][0]
    assert rest["operation"] == [
        {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}
    ]
    ops = {
        r["type"]: {o["definition"].rsplit("/", 1)[1] for o in r.get("operation", [])}
        for r in rest["resource"]
    }
    assert ops["Patient"] == {"patient-export", "Patient-everything"}
    assert ops["Group"] == {"group-export"}
    assert client.get("/fhir/metadata?_format=xml").status_code == 200  # still a valid R4 CapabilityStatement
