"""The compartment rule on every path a Group client can take to another patient's data.

A client restricted to a Group whose stored resource lists patient A asks for patient B's data
through read, vread, instance/type/system history, search, _include and _revinclude: every answer is
the one an unknown id gets, and each refusal is audited. When the Group is deleted, the client
sees no patient data at all (fail closed).
"""

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import audit_event
from tests.fhir_api.search_support import ids, store, store_group, stored, token

GROUP = "referrer-a"


@pytest.fixture
def world(client, db, clinic_headers):
    """Two patients with their data, a Group of the first, and a token restricted to that Group."""
    store(client, clinic_headers, patients=2, sessions=1)
    mine, other = (p["id"] for p in stored(db, "Patient"))
    store_group(db, GROUP, [mine])
    headers = token(client, db, group_id=GROUP)
    observations = stored(db, "Observation")
    theirs = next(o["id"] for o in observations if o["subject"]["reference"] == f"Patient/{other}")
    own = next(o["id"] for o in observations if o["subject"]["reference"] == f"Patient/{mine}")
    return {"mine": mine, "other": other, "theirs": theirs, "own": own, "headers": headers}


def _audited(db, action):
    with db.reader() as conn:
        rows = conn.execute(select(audit_event).where(audit_event.c.action == action)).mappings().all()
    return [dict(r) for r in rows]


def _alike(forbidden, absent, forbidden_id, absent_id):
    """Same status, headers that matter and body, once the asked-for id is taken out."""
    assert forbidden.status_code == absent.status_code == 404
    assert forbidden.mimetype == absent.mimetype == "application/fhir+json"
    assert "ETag" not in forbidden.headers and "Last-Modified" not in forbidden.headers
    assert forbidden.data.replace(forbidden_id.encode(), b"X") == absent.data.replace(
        absent_id.encode(), b"X"
    )


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/fhir/Patient/{other}", "fhir.read"),
        ("/fhir/Observation/{theirs}", "fhir.read"),
        ("/fhir/Observation/{theirs}/_history/1", "fhir.vread"),
        ("/fhir/Patient/{other}/_history", "fhir.history"),
        ("/fhir/Observation/{theirs}/_history", "fhir.history"),
    ],
)
def test_another_patients_resource_is_answered_as_absent_and_audited(client, db, world, path, action):
    forbidden_id = world["other"] if "{other}" in path else world["theirs"]
    forbidden = client.get(path.format(**world), headers=world["headers"])
    absent_id = "0000-not-stored"
    absent = client.get(
        path.replace("{other}", absent_id).replace("{theirs}", absent_id), headers=world["headers"]
    )
    _alike(forbidden, absent, forbidden_id, absent_id)
    rows = _audited(db, action)
    assert [r["outcome"] for r in rows] == [404, 404]
    assert rows[0]["entity"].endswith(forbidden_id) and rows[0]["actor"] is not None
    # The client's own data answers normally over the same paths.
    own = path.replace("{other}", world["mine"]).replace("{theirs}", world["own"])
    assert client.get(own, headers=world["headers"]).status_code == 200


def test_type_and_system_history_leave_out_other_patients(client, db, world):
    other = f"Patient/{world['other']}"
    for path in (
        "/fhir/Observation/_history?_count=1000",
        "/fhir/_history?_count=1000",
        "/fhir/Patient/_history",
    ):
        bundle = client.get(path, headers=world["headers"]).json
        resources = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
        assert resources, path
        assert other not in orjson.dumps(resources).decode(), path
        assert world["other"] not in [r["id"] for r in resources if r["resourceType"] == "Patient"], path


def test_search_include_and_revinclude_of_another_patient_find_nothing(client, db, world):
    h = world["headers"]
    other = world["other"]
    paths = [
        f"/fhir/Observation?patient={other}",
        f"/fhir/Observation?subject=Patient/{other}&_include=Observation:patient",
        f"/fhir/Patient?_id={other}&_revinclude=Observation:patient",
        f"/fhir/Observation?_id={world['theirs']}&_include=Observation:patient",
    ]
    for path in paths:
        bundle = client.get(path, headers=h).json
        assert bundle.get("entry", []) == [], path
    posted = client.post("/fhir/Observation/_search", data={"patient": other}, headers=h)
    assert posted.status_code == 200 and posted.json.get("entry", []) == []
    # Includes from the client's own data never pull the other patient in.
    bundle = client.get("/fhir/Observation?_include=Observation:patient&_count=1000", headers=h).json
    assert ids(bundle, "include") == [world["mine"]]
    searches = _audited(db, "fhir.search")
    assert len(searches) == len(paths) + 2 and all(r["outcome"] == 200 for r in searches)
    assert all(other not in (r["detail"] or "") for r in searches)


def test_a_deleted_group_shows_no_patient_data(client, db, world):
    h = world["headers"]
    assert client.get(f"/fhir/Patient/{world['mine']}", headers=h).status_code == 200
    with db.writer() as conn:
        ResourceRepository(conn).write(
            [ResourceWrite("Group", GROUP, 2, "gone", None, None)], now=datetime.now(UTC)
        )
    assert client.get(f"/fhir/Patient/{world['mine']}", headers=h).status_code == 404
    assert client.get(f"/fhir/Observation/{world['own']}", headers=h).status_code == 404
    assert client.get("/fhir/Observation?_summary=count", headers=h).json["total"] == 0
    assert client.get("/fhir/Patient?_summary=count", headers=h).json["total"] == 0
    # Its own Group is the one resource it may still ask about: deleted, as for anyone.
    assert client.get(f"/fhir/Group/{GROUP}", headers=h).status_code == 410
