"""Type-level and system-level history: newest first, _since, keyset paging, scopes and compartment."""

import copy
from datetime import UTC, datetime, timedelta

import pytest

from tests.fhir_api.search_support import link, relative, store, stored, token


@pytest.fixture
def data(client, clinic_headers):
    return store(client, clinic_headers, patients=1, sessions=1)


def _walk(client, headers, path):
    seen = []
    while path:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.json
        seen += response.json.get("entry", [])
        nxt = link(response.json, "next")
        path = relative(nxt) if nxt else None
    return seen


def test_type_history_pages_newest_first_and_since(client, db, clinic_headers, data):
    headers = token(client, db)
    everything = _walk(client, headers, "/fhir/Observation/_history?_count=1000")
    assert len(everything) == len(stored(db, "Observation"))
    paged = _walk(client, headers, "/fhir/Observation/_history?_count=7")
    assert [e["fullUrl"] for e in paged] == [e["fullUrl"] for e in everything]
    cut = datetime.now(UTC)
    session = copy.deepcopy(data["sessions"][0])
    session["vitals"][0]["heart_rate"] += 1
    session["vitals"].pop()
    client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    since = (cut - timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
    recent = client.get(f"/fhir/Observation/_history?_since={since}", headers=headers).json
    methods = {e["request"]["method"] for e in recent["entry"]}
    assert methods == {"DELETE", "PUT"} and recent["total"] == len(recent["entry"]) < len(everything)
    assert all(e["response"]["lastModified"] >= cut.isoformat()[:19] for e in recent["entry"])
    assert client.get("/fhir/Observation/_history?_since=soon", headers=headers).status_code == 400
    assert client.get("/fhir/Observation/_history?_count=x", headers=headers).status_code == 400


def test_system_history_is_limited_to_scoped_types_and_groups(client, db, data):
    assert (
        client.get("/fhir/_history", headers=token(client, db, scope="system/Patient.r")).status_code == 403
    )
    only = client.get("/fhir/_history", headers=token(client, db, scope="system/Patient.rs")).json
    assert {e["resource"]["resourceType"] for e in only["entry"]} == {"Patient"}
    everything = client.get("/fhir/_history", headers=token(client, db)).json
    assert "type" in everything, everything
    assert everything["type"] == "history" and everything["entry"]
    restricted = token(client, db, group_id="no-such-group")
    entries = _walk(client, restricted, "/fhir/_history?_count=500")
    assert entries and all(
        "Patient/" not in str(e["resource"].get("subject", "")) for e in entries if "resource" in e
    )
    assert not any(e["resource"]["resourceType"] == "Patient" for e in entries if "resource" in e)
