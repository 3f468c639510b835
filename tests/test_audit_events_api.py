"""The audit log as FHIR AuditEvents for admins: role check, filters, stable paging, and its own audit row."""

from urllib.parse import urlsplit

import orjson
import pytest

from integration.ingest import synthetic
from tests.mappings.conformance import SCHEMA_PATH, schema_errors


@pytest.fixture
def admin_headers(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def patient_ids(client, clinic_headers):
    batch = synthetic.batch(seed=5, n_patients=2, sessions_per_patient=1)
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(batch), headers=clinic_headers, content_type="application/json"
    )
    assert response.status_code == 200
    for patient in batch["patients"]:
        assert client.get(f"/api/v1/patients/{patient['id']}", headers=clinic_headers).status_code == 200
    return [p["id"] for p in batch["patients"]]


def test_only_admins_read_the_audit_log(client, clinic_headers):
    assert client.get("/admin/api/audit-events").status_code == 401
    assert client.get("/admin/api/audit-events", headers=clinic_headers).status_code == 403


def test_events_are_newest_first_filtered_and_schema_valid(client, admin_headers, patient_ids):
    response = client.get("/admin/api/audit-events", headers=admin_headers)
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    bundle = response.json
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    events = [e["resource"] for e in bundle["entry"]]
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), key=lambda i: -int(i[6:]))
    assert {e["subtype"][0]["code"] for e in events if e.get("subtype")} >= {"read", "batch"}
    if SCHEMA_PATH.exists():
        assert [problem for e in events for problem in schema_errors(e)] == []

    mine = client.get(f"/admin/api/audit-events?patient=Patient/{patient_ids[0]}", headers=admin_headers)
    refs = [
        {x["what"]["reference"] for x in e["resource"]["entity"] if "what" in x} for e in mine.json["entry"]
    ]
    assert refs and all(f"Patient/{patient_ids[0]}" in r for r in refs)
    reads = client.get("/admin/api/audit-events?action=intake.read", headers=admin_headers).json["entry"]
    assert len(reads) == 2 and all(e["resource"]["action"] == "R" for e in reads)


def test_paging_is_stable_while_new_events_arrive(client, admin_headers, patient_ids):
    first = client.get("/admin/api/audit-events?_count=1", headers=admin_headers).json
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    client.get("/admin/api/audit-events?_count=1", headers=admin_headers)  # logs a new row meanwhile
    parts = urlsplit(next_url)
    second = client.get(f"{parts.path}?{parts.query}", headers=admin_headers)
    first_id = int(first["entry"][0]["resource"]["id"][6:])
    assert int(second.json["entry"][0]["resource"]["id"][6:]) == first_id - 1


def test_reading_the_log_is_logged(client, admin_headers):
    client.get("/admin/api/audit-events", headers=admin_headers)
    latest = client.get("/admin/api/audit-events?_count=1", headers=admin_headers).json["entry"][0][
        "resource"
    ]
    # The newest row is the previous read of the log: Audit Log Used, by the admin token's name.
    assert latest["type"]["code"] == "110101"
    assert latest["agent"][0]["who"]["identifier"]["value"] == "clinic-admin"


@pytest.mark.parametrize(
    "query",
    ["_count=0", "_count=5000", "_count=x", "_before=-1", "_since=2026-01-01", "_since=yesterday", "foo=1"],
)
def test_bad_parameters_are_400_naming_the_parameter(client, admin_headers, query):
    response = client.get(f"/admin/api/audit-events?{query}", headers=admin_headers)
    assert response.status_code == 400
    assert query.split("=")[0] in response.json["error"]["message"]


def test_links_use_the_public_base_url_not_the_host_header(client, admin_headers, patient_ids):
    base = client.application.config["HORIZON_SETTINGS"].public_base_url.rstrip("/")
    response = client.get(
        "/admin/api/audit-events?_count=1", headers={**admin_headers, "Host": "attacker.example"}
    )
    urls = [link["url"] for link in response.json["link"]]
    assert {link["relation"] for link in response.json["link"]} == {"self", "next"}
    assert all(u.startswith(f"{base}/admin/api/audit-events?") for u in urls), urls
    assert not any("attacker" in u for u in urls)
