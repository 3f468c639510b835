"""Patient/$everything: the compartment and the resources it references, from stored bytes; _type,
_since, stable paging, scopes, audit."""

import random
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

import orjson
import pytest
from sqlalchemy import select

from integration.ingest import synthetic
from integration.ingest.service import write_static_resources
from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import audit_event, fhir_resource
from mappings.group import referrer_group_id
from mappings.ids import resource_id
from tests.fhir_api.test_bulk_export import load, token


@pytest.fixture
def stored(db, ctx):
    batch = synthetic.batch(seed=33, n_patients=3, sessions_per_patient=2)
    write_static_resources(db, ctx)  # the clinic Organization and Device, as a served instance has them
    load(db, ctx, batch)
    return batch


def _compartment(db, patient_id):
    t = fhir_resource.c
    with db.reader() as conn:
        rows = conn.execute(
            select(t.resource_type, t.id, t.content).where(t.patient_id == patient_id, t.deleted.is_(False))
        )
        return {(r.resource_type, r.id): r.content for r in rows}


def _referenced(db, compartment, types=None):
    """Resources in no patient compartment that the compartment's resources (of `types`) reference,
    found by reading every reference in their JSON: independent of the server's reference index."""
    targets = set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref.count("/") == 1:
                targets.add(tuple(ref.split("/")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for (resource_type, _), content in compartment.items():
        if types is None or resource_type in types:
            walk(orjson.loads(content))
    t = fhir_resource.c
    with db.reader() as conn:
        rows = conn.execute(
            select(t.resource_type, t.id, t.content).where(t.patient_id.is_(None), t.deleted.is_(False))
        )
        return {(r.resource_type, r.id): r.content for r in rows if (r.resource_type, r.id) in targets}


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
    referenced = _referenced(db, compartment)
    # The clinic, its charting-system Device and the staff who attended, performed and referred.
    assert {k[0] for k in referenced} == {"Organization", "Practitioner", "Device"}
    first = client.get(f"/fhir/Patient/{patient}/$everything?_count=25", headers=headers)
    assert first.status_code == 200 and first.json["total"] == len(compartment)  # matches only
    entries, pages = _follow(client, f"http://x/fhir/Patient/{patient}/$everything?_count=25", headers)
    assert pages == -(-(len(compartment) + len(referenced)) // 25)
    got = {(e["resource"]["resourceType"], e["resource"]["id"]): e for e in entries}
    assert len(got) == len(entries) == len(compartment) + len(referenced)  # each once
    for key, content in {**compartment, **referenced}.items():
        assert got[key]["resource"] == orjson.loads(content)
        assert got[key]["search"]["mode"] == ("match" if key in compartment else "include")
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
    referenced = set(_referenced(db, _compartment(db, patient)))
    load(db, ctx, {"sessions": [session]})
    assert len(_compartment(db, patient)) > len(before)
    rest, _ = _follow(client, next_url, headers)
    seen = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in page["entry"] + rest}
    assert before | referenced <= seen  # nothing that was there is skipped
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


def test_referenced_resources_follow_the_scopes_type_and_since(client, db, stored):
    patient = resource_id("patient", stored["patients"][0]["id"])
    compartment = _compartment(db, patient)
    everything = f"/fhir/Patient/{patient}/$everything"

    def keys(headers, query=""):
        entries, _ = _follow(client, f"http://x{everything}?_count=7{query}", headers)
        return {(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries}

    # Practitioners the client may read, but only those named by resources it may read itself
    # (the Encounters); no Organization without Organization scope.
    encounters = token(
        client, db, name="enc", scope="system/Patient.rs system/Encounter.rs system/Practitioner.rs"
    )
    got = keys(encounters)
    from_encounters = _referenced(db, compartment, {"Encounter"})
    expected_practitioners = {k for k in from_encounters if k[0] == "Practitioner"}
    assert expected_practitioners and {k for k in got if k[0] == "Practitioner"} == expected_practitioners
    assert {k[0] for k in got} == {"Patient", "Encounter", "Practitioner"}
    everyone = {k for k in _referenced(db, compartment) if k[0] == "Practitioner"}
    assert everyone > expected_practitioners  # others are named only by Procedures, ServiceRequests, ...
    # Patient only: the Patient names the clinic Organization, which this client may not read.
    patient_only = token(client, db, name="pat", scope="system/Patient.rs system/Practitioner.rs")
    assert keys(patient_only) == {("Patient", patient)}

    full = token(client, db)
    assert keys(full, "&_type=Practitioner") == everyone
    assert keys(full, "&_type=Organization,Patient") == {("Patient", patient)} | {
        k for k in _referenced(db, compartment) if k[0] == "Organization"
    }
    assert keys(full, "&_since=2999-01-01T00:00:00Z") == set()


def test_another_patients_resources_are_never_included(client, db, stored):
    patient = resource_id("patient", stored["patients"][0]["id"])
    other = resource_id("patient", stored["patients"][1]["id"])
    procedure = {
        "resourceType": "Procedure",
        "id": "cross-reference",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [{"actor": {"reference": f"Patient/{other}"}}],
    }
    with db.writer() as conn:
        ResourceRepository(conn).write(
            [
                ResourceWrite(
                    "Procedure", "cross-reference", 1, "x", orjson.dumps(procedure).decode(), patient
                )
            ],
            now=datetime.now(UTC),
        )
    entries, _ = _follow(client, f"http://x/fhir/Patient/{patient}/$everything", token(client, db))
    got = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries}
    assert ("Procedure", "cross-reference") in got
    assert ("Patient", other) not in got
    assert {e["resource"].get("id") for e in entries if e["resource"]["resourceType"] == "Patient"} == {
        patient
    }
