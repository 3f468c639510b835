"""Search, _include and _revinclude under SMART scopes and the Group compartment rule."""

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import audit_event
from tests.fhir_api.search_support import ids, store, stored, token


@pytest.fixture
def data(client, clinic_headers):
    return store(client, clinic_headers)


def _group(db, group_id, patient_ids):
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
        ResourceRepository(conn).write(
            [ResourceWrite("Group", group_id, 1, "h", content, None)], now=datetime.now(UTC)
        )


def _patients_in(bundle):
    out = set()
    for e in bundle.get("entry", []):
        r = e["resource"]
        if r["resourceType"] == "Patient":
            out.add(r["id"])
        for key in ("subject", "patient"):
            if isinstance(r.get(key), dict):
                out.add(r[key]["reference"].split("/")[1])
        for target in r.get("target", []):
            if target["reference"].startswith("Patient/"):
                out.add(target["reference"].split("/")[1])
    return out


def test_group_client_never_sees_other_patients(client, db, data):
    mine, other = (p["id"] for p in stored(db, "Patient"))
    _group(db, "referrer-a", [mine])
    _group(db, "referrer-b", [other])
    headers = token(client, db, group_id="referrer-a")
    queries = [
        "/fhir/Patient?_count=1000",
        "/fhir/Observation?_count=1000&_include=Observation:patient",
        f"/fhir/Observation?patient={other}",
        f"/fhir/Patient?_id={other}",
        "/fhir/Patient?_revinclude=Observation:patient&_count=1000",
        "/fhir/Encounter?_revinclude=Provenance:target&_include=Encounter:patient&_count=1000",
        "/fhir/Provenance?_count=1000&_include=Provenance:target",
        "/fhir/Group?_count=1000",
    ]
    for query in queries:
        response = client.get(query, headers=headers)
        assert response.status_code == 200, (query, response.json)
        assert other not in _patients_in(response.json), query
    assert ids(client.get(f"/fhir/Patient?_id={other}", headers=headers).json) == []
    assert ids(client.get("/fhir/Group", headers=headers).json) == ["referrer-a"]
    assert client.get("/fhir/Observation?_summary=count", headers=headers).json["total"] == len(
        [o for o in stored(db, "Observation") if o["subject"]["reference"] == f"Patient/{mine}"]
    )
    # Resources outside any compartment stay visible.
    assert ids(client.get("/fhir/Practitioner?_count=1", headers=headers).json)
    # Forbidden and absent look alike: an unknown id and another patient's id give the same bundle shape.
    absent = client.get("/fhir/Patient?_id=nope", headers=headers).json
    forbidden = client.get(f"/fhir/Patient?_id={other}", headers=headers).json
    assert absent.keys() == forbidden.keys() and absent["total"] == forbidden["total"] == 0


def test_group_client_without_a_stored_group_sees_no_patient_data(client, db, data):
    headers = token(client, db, group_id="missing-group")
    assert client.get("/fhir/Observation?_summary=count", headers=headers).json["total"] == 0
    assert client.get("/fhir/Patient?_summary=count", headers=headers).json["total"] == 0


def test_scopes_gate_search_and_includes(client, db, data):
    headers = token(client, db, scope="system/Observation.rs")
    assert client.get("/fhir/Patient", headers=headers).status_code == 403
    bundle = client.get("/fhir/Observation?_count=5&_include=Observation:patient", headers=headers).json
    assert ids(bundle) and ids(bundle, "include") == []  # no scope on Patient: not included
    read_only = token(client, db, scope="system/Observation.r")
    assert client.get("/fhir/Observation", headers=read_only).status_code == 403
    assert client.get("/fhir/Observation").status_code == 401
    with db.reader() as conn:
        outcomes = (
            conn.execute(
                select(audit_event.c.outcome).where(
                    audit_event.c.action.in_(["fhir.search", "smart.refused"])
                )
            )
            .scalars()
            .all()
        )
    assert 200 in outcomes and 403 in outcomes and 401 in outcomes
