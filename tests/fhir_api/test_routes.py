"""The FHIR read surface over stored resources: SMART scopes, ETags, 304/404/410, history, audit."""

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from sqlalchemy import select

from integration.ingest import synthetic
from integration.ingest.service import write_static_resources
from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import audit_event, fhir_resource
from mappings.ids import resource_id
from tests.auth.test_smart_support import assertion, form, register
from tests.fhir_api.search_support import store


@pytest.fixture
def stored(client, clinic_headers):
    batch = synthetic.batch(seed=31, n_patients=1, sessions_per_patient=1)
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(batch), headers=clinic_headers, content_type="application/json"
    )
    assert response.json["summary"]["rejected"] == 0
    return batch


def _token(client, db, scope="system/*.rs", **options):
    client_id = register(db, name=f"ehr-{scope}-{options}", scope=scope, **options)
    response = client.post("/auth/token", data=form(assertion(client_id), scope=scope))
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}, client_id


def _first(db, resource_type):
    with db.reader() as conn:
        row = conn.execute(
            select(fhir_resource.c.id, fhir_resource.c.content)
            .where(fhir_resource.c.resource_type == resource_type)
            .limit(1)
        ).first()
    return row.id, row.content


def test_metadata_is_public_and_truthful(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    statement = response.json
    assert statement["fhirVersion"] == "4.0.1" and statement["format"] == ["json", "xml"]
    resources = {r["type"]: {i["code"] for i in r["interaction"]} for r in statement["rest"][0]["resource"]}
    assert resources["Observation"] == {"read", "vread", "history-instance", "history-type", "search-type"}
    operations = {o["name"] for r in statement["rest"][0].get("resource", []) for o in r.get("operation", [])}
    operations |= {o["name"] for o in statement["rest"][0].get("operation", [])}
    assert operations == {"everything", "export"}  # nothing beyond what the routes implement


def test_read_needs_a_token(client, db, stored):
    rid, _ = _first(db, "Observation")
    response = client.get(f"/fhir/Observation/{rid}")
    assert response.status_code == 401
    assert response.json["resourceType"] == "OperationOutcome"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_read_serves_stored_bytes_with_etag_and_304(client, db, stored):
    headers, client_id = _token(client, db)
    rid, content = _first(db, "Observation")
    response = client.get(f"/fhir/Observation/{rid}", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    assert response.data == content.encode()
    assert response.headers["ETag"] == 'W/"1"'
    assert (
        client.get(f"/fhir/Observation/{rid}", headers={**headers, "If-None-Match": 'W/"1"'}).status_code
        == 304
    )
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=1), usegmt=True)
    assert (
        client.get(f"/fhir/Observation/{rid}", headers={**headers, "If-Modified-Since": later}).status_code
        == 304
    )
    assert (
        client.get(f"/fhir/Observation/{rid}", headers={**headers, "If-None-Match": 'W/"0"'}).status_code
        == 200
    )
    with db.reader() as conn:
        rows = conn.execute(select(audit_event).where(audit_event.c.action == "fhir.read")).mappings().all()
    assert rows and rows[0]["actor"] == client_id and rows[0]["patient_id"] and rows[0]["outcome"] == 200


def test_vread_history_and_deleted(client, db, stored, clinic_headers):
    headers, _ = _token(client, db)
    session = copy.deepcopy(stored["sessions"][0])
    reading = next(v for v in session["vitals"] if "heart_rate" in v)
    reading["heart_rate"] += 1
    client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    with db.reader() as conn:
        rid = conn.execute(
            select(fhir_resource.c.id).where(
                fhir_resource.c.resource_type == "Observation", fhir_resource.c.version_id == 2
            )
        ).scalar_one()
    assert client.get(f"/fhir/Observation/{rid}/_history/1", headers=headers).json["meta"]["versionId"] == "1"
    assert client.get(f"/fhir/Observation/{rid}/_history/9", headers=headers).status_code == 404
    bundle = client.get(f"/fhir/Observation/{rid}/_history", headers=headers).json
    assert bundle["type"] == "history" and bundle["total"] == 2
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["2", "1"]
    session["vitals"] = [v for v in session["vitals"] if v is not reading]
    client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    gone = client.get(f"/fhir/Observation/{rid}", headers=headers)
    assert gone.status_code == 410 and gone.json["issue"][0]["code"] == "deleted"
    assert (
        client.get(f"/fhir/Observation/{rid}/_history", headers=headers).json["entry"][0]["request"]["method"]
        == "DELETE"
    )


def test_scope_type_and_id_errors_are_operation_outcomes(client, db, stored):
    headers, _ = _token(client, db, scope="system/Patient.rs")
    rid, _ = _first(db, "Observation")
    assert client.get(f"/fhir/Observation/{rid}", headers=headers).status_code == 403
    assert client.get("/fhir/Patient/does-not-exist", headers=headers).status_code == 404
    assert client.get("/fhir/Basic/x", headers=headers).status_code == 404
    response = client.get(f"/fhir/Patient/{rid}?_format=html", headers=headers)
    assert response.status_code == 406 and response.json["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient/x", headers={**headers, "Accept": "text/html"}).status_code == 406
    assert client.post("/fhir/Patient", headers=headers).status_code == 404


def _store_group(db, group_id, patient_ids):
    from integration.store.resources import ResourceRepository, ResourceWrite

    content = orjson.dumps(
        {
            "resourceType": "Group",
            "id": group_id,
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patient_ids],
        }
    ).decode()
    with db.writer() as conn:
        write = ResourceWrite("Group", group_id, 1, "h", content, None)
        ResourceRepository(conn).write([write], now=datetime.now(UTC))


def test_a_group_restricted_client_sees_only_its_members(client, db, stored, ctx):
    write_static_resources(db, ctx)
    headers, _ = _token(client, db, group_id="referrer-group-1")
    rid, _ = _first(db, "Observation")
    patient_id, _ = _first(db, "Patient")
    questionnaire, _ = _first(db, "Questionnaire")
    paths = [f"Observation/{rid}", f"Patient/{patient_id}", f"Patient/{patient_id}/_history"]
    # No such Group: fail closed, answered as absent.
    assert [client.get(f"/fhir/{p}", headers=headers).status_code for p in paths] == [404, 404, 404]
    assert client.get(f"/fhir/Questionnaire/{questionnaire}", headers=headers).status_code == 200
    _store_group(db, "referrer-group-2", [patient_id])
    assert [client.get(f"/fhir/{p}", headers=headers).status_code for p in paths] == [404, 404, 404]
    assert client.get("/fhir/Group/referrer-group-2", headers=headers).status_code == 404
    _store_group(db, "referrer-group-1", [patient_id])
    assert [client.get(f"/fhir/{p}", headers=headers).status_code for p in paths] == [200, 200, 200]
    assert client.get("/fhir/Group/referrer-group-1", headers=headers).status_code == 200
    unrestricted, _ = _token(client, db)
    assert client.get("/fhir/Group/referrer-group-2", headers=unrestricted).status_code == 200


def test_xml_is_produced_from_the_models_and_round_trips(client, db, stored):
    from fhir.resources.R4B.observation import Observation
    from lxml import etree

    headers, _ = _token(client, db)
    rid, content = _first(db, "Observation")
    response = client.get(f"/fhir/Observation/{rid}?_format=xml", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/fhir+xml"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(response.data, parser)
    assert root.tag == "{http://hl7.org/fhir}Observation"
    back = Observation.model_validate_xml(response.data).model_dump(mode="json", exclude_none=True)
    assert back == Observation.model_validate(orjson.loads(content)).model_dump(
        mode="json", exclude_none=True
    )
    by_accept = client.get(f"/fhir/Observation/{rid}", headers={**headers, "Accept": "application/fhir+xml"})
    assert by_accept.mimetype == "application/fhir+xml" and by_accept.data == response.data
    missing = client.get("/fhir/Observation/nope", headers={**headers, "Accept": "application/fhir+xml"})
    assert missing.status_code == 404 and b"<OperationOutcome" in missing.data
    assert client.get("/fhir/metadata?_format=xml").data.count(b"<CapabilityStatement") == 1


def _moved_session(client, db, clinic_headers):
    """A session stored for patient A, then moved to patient B: its Encounter has a version in each."""
    batch = store(client, clinic_headers, seed=33, patients=2, sessions=1)
    first, second = (p["id"] for p in batch["patients"])
    session = copy.deepcopy(next(s for s in batch["sessions"] if s["patient_id"] == first))
    session["patient_id"] = second
    for kind in ("assessments", "adverse_events"):
        for item in session.get(kind, []):
            if "patient_id" in item:
                item["patient_id"] = second
    moved = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert moved.status_code == 200 and moved.json["version"] == 2, moved.json
    encounter = resource_id("session", session["id"])
    return encounter, resource_id("patient", first), resource_id("patient", second)


def _group(db, group_id, versions):
    """Store a Group version per member list, oldest first."""
    for members in versions:
        content = orjson.dumps(
            {
                "resourceType": "Group",
                "id": group_id,
                "type": "person",
                "actual": True,
                "member": [{"entity": {"reference": f"Patient/{p}"}} for p in members],
            }
        ).decode()
        with db.writer() as conn:
            repo = ResourceRepository(conn)
            state = repo.states([("Group", group_id)]).get(("Group", group_id))
            version = 1 if state is None else state.version_id + 1
            digest = hashlib.sha256(content.encode()).hexdigest()
            write = ResourceWrite("Group", group_id, version, digest, content, None)
            repo.write([write], now=datetime.now(UTC))


def test_history_of_a_moved_record_shows_each_group_client_only_its_patients_versions(
    client, db, clinic_headers
):
    encounter, first, second = _moved_session(client, db, clinic_headers)
    full, _ = _token(client, db)
    everything = client.get(f"/fhir/Encounter/{encounter}/_history", headers=full).json
    assert [e["resource"]["subject"]["reference"] for e in everything["entry"]] == [
        f"Patient/{second}",
        f"Patient/{first}",
    ]
    _group(db, "g-first", [[first]])
    _group(db, "g-second", [[second]])
    for group_id, patient, version in (("g-first", first, "1"), ("g-second", second, "2")):
        headers, client_id = _token(client, db, group_id=group_id)
        response = client.get(f"/fhir/Encounter/{encounter}/_history", headers=headers)
        assert response.status_code == 200
        entries = response.json["entry"]
        assert response.json["total"] == 1 and len(entries) == 1
        assert entries[0]["resource"]["subject"]["reference"] == f"Patient/{patient}"
        assert entries[0]["response"]["etag"] == f'W/"{version}"'
        other = "2" if version == "1" else "1"
        vread = f"/fhir/Encounter/{encounter}/_history"
        assert client.get(f"{vread}/{version}", headers=headers).status_code == 200
        assert client.get(f"{vread}/{other}", headers=headers).status_code == 404
        with db.reader() as conn:
            row = conn.execute(
                select(audit_event.c.patient_id, audit_event.c.detail).where(
                    audit_event.c.action == "fhir.history", audit_event.c.actor == client_id
                )
            ).one()
        assert row.patient_id == patient and orjson.loads(row.detail)["patients"] == [patient]
    _group(db, "g-none", [[]])
    nobody, _ = _token(client, db, group_id="g-none")
    assert client.get(f"/fhir/Encounter/{encounter}/_history", headers=nobody).status_code == 404


def test_a_group_client_sees_only_the_current_version_of_its_group(client, db, clinic_headers):
    _, first, second = _moved_session(client, db, clinic_headers)
    _group(db, "g-ref", [[first, second], [second]])  # `first` left the Group in version 2
    headers, _ = _token(client, db, group_id="g-ref")
    response = client.get("/fhir/Group/g-ref/_history", headers=headers)
    assert response.status_code == 200 and response.json["total"] == 1
    assert [m["entity"]["reference"] for m in response.json["entry"][0]["resource"]["member"]] == [
        f"Patient/{second}"
    ]
    assert client.get("/fhir/Group/g-ref/_history/1", headers=headers).status_code == 404
    assert client.get("/fhir/Group/g-ref/_history/2", headers=headers).status_code == 200
    full, _ = _token(client, db)
    assert client.get("/fhir/Group/g-ref/_history", headers=full).json["total"] == 2
    assert client.get("/fhir/Group/g-ref/_history/1", headers=full).status_code == 200
