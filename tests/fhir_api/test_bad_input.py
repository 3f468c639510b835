"""Bad input to any FHIR endpoint is a 4xx OperationOutcome, never a 5xx, on both databases.

Unicode digits ('²' passes str.isdigit, not int), integers past 64 bits, instants outside years
1..9999 in UTC, NULs (PostgreSQL text cannot hold them) in ids, cursors and `_after`.
"""

import base64
import dataclasses

import orjson
import pytest
from sqlalchemy import func, select

from integration.fhir_api.export_runner import runner
from integration.store.audit import AuditEntry, AuditRepository
from integration.store.resources import ResourceRepository
from integration.store.schema import audit_event
from tests.fhir_api.search_support import store, stored, token

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
EARLY = "0001-01-01T00:00:00%2B05:00"  # before 0001-01-01T00:00Z
NUL = "\x00"


def _cursor(*values):
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


BAD = [
    ("GET", "/fhir/Observation?_count=%C2%B2"),
    ("POST", "/fhir/Observation/_search?_count=%C2%B2"),
    ("GET", "/fhir/Observation?_id=a%00b"),
    ("GET", "/fhir/Observation?subject=a%00b"),
    ("GET", "/fhir/Observation?name:exact=a%00b"),
    ("GET", f"/fhir/Observation?_cursor={_cursor(NUL)}"),
    ("GET", f"/fhir/Observation?_sort=date&_cursor={_cursor('0001-01-01T00:00:00+05:00', 'a')}"),
    ("GET", f"/fhir/Observation?_sort=date&_cursor={_cursor('9999-12-31T23:00:00-05:00', 'a')}"),
    ("GET", "/fhir/Observation/_history?_count=%C2%B2"),
    ("GET", "/fhir/Observation/_history?_cursor=%C2%B2"),
    ("GET", "/fhir/_history?_cursor=%C2%B2"),
    ("GET", "/fhir/_history?_cursor=99999999999999999999999"),
    ("GET", "/fhir/_history?_count=99999999999999999999999"),
    ("GET", "/fhir/Patient/a%00b"),
    ("GET", "/fhir/Patient/a%00b/_history"),
    ("GET", "/fhir/Patient/a%00b/_history/1"),
    ("GET", "/fhir/Patient/{pid}/_history/%C2%B2"),
    ("GET", "/fhir/Patient/{pid}/_history/99999999999999999999999"),
    ("GET", "/fhir/Patient/{pid}/_history/2147483648"),
    ("GET", "/fhir/Patient/{pid}/$everything?_count=%C2%B2"),
    ("GET", f"/fhir/Patient/{{pid}}/$everything?_since={EARLY}"),
    ("GET", "/fhir/Patient/{pid}/$everything?_since=9999-12-31T23:00:00-05:00"),
    ("GET", "/fhir/Patient/{pid}/$everything?_after=Observation/%00"),
    ("GET", "/fhir/Patient/{pid}/$everything?_after=Obs%00/x"),
    ("GET", "/fhir/Patient/a%00b/$everything"),
    ("GET", f"/fhir/$export?_since={EARLY}"),
    ("GET", f"/fhir/Patient/$export?_since={EARLY}"),
    ("GET", "/fhir/Group/a%00b/$export"),
    ("GET", "/fhir/bulk/a%00b"),
    ("GET", "/fhir/bulk/a%00b/Patient-1.ndjson"),
    ("DELETE", "/fhir/bulk/a%00b"),
]
# Ranges reaching past year 1 or 9999 in UTC are clamped (nothing stored lies beyond): answered.
CLAMPED = [
    "/fhir/Observation?date=9999-12-31T23:00:00-05:00",
    f"/fhir/Observation?date={EARLY}",
    "/fhir/Observation?date=9999-12-31T23:59:59.9999999Z",
    "/fhir/Observation?date=9999-12",
    "/fhir/Observation?_lastUpdated=9999-12-31T23:00:00-05:00",
    f"/fhir/Observation/_history?_since={EARLY}",
    f"/fhir/_history?_since={EARLY}",
]


@pytest.fixture
def settings(settings, tmp_path):
    return dataclasses.replace(settings, export_dir=str(tmp_path / "exports"))


@pytest.fixture
def app(app):
    yield app
    runner(app).shutdown()


@pytest.fixture
def setup(client, db, clinic_headers):
    store(client, clinic_headers, patients=1, sessions=1)
    return token(client, db), stored(db, "Patient")[0]["id"]


def _audit_rows(db):
    with db.reader() as conn:
        return conn.execute(select(func.count()).select_from(audit_event)).scalar_one()


@pytest.mark.parametrize(("method", "path"), BAD)
def test_bad_input_is_a_4xx_operation_outcome_and_audited(client, db, setup, method, path):
    headers, pid = setup
    before = _audit_rows(db)
    response = client.open(path.replace("{pid}", pid), method=method, headers={**headers, **ASYNC})
    assert 400 <= response.status_code < 500, response.data
    assert response.mimetype == "application/fhir+json"
    assert response.json["resourceType"] == "OperationOutcome"
    if "%00" in path.partition("?")[0]:  # refused reads by id are on record: NUL no longer breaks the insert
        assert _audit_rows(db) == before + 1


def test_an_out_of_range_since_in_a_post_kickoff_is_400(client, setup):
    headers, _ = setup
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_since", "valueInstant": "0001-01-01T00:00:00+05:00"}],
    }
    response = client.post("/fhir/$export", json=body, headers={**headers, **ASYNC})
    assert response.status_code == 400 and "_since" in response.json["issue"][0]["diagnostics"]


@pytest.mark.parametrize("path", CLAMPED)
def test_dates_past_the_representable_years_are_clamped_not_5xx(client, setup, path):
    headers, _ = setup
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.data
    assert response.json["resourceType"] == "Bundle"


@pytest.mark.parametrize(
    "query", ["_count=%C2%B2", "_before=99999999999999999999999", "_before=%C2%B2", f"_since={EARLY}"]
)
def test_audit_events_refuse_bad_numbers_and_instants_with_400(client, admin_token, query):
    headers = {"Authorization": f"Bearer {admin_token}"}
    response = client.get(f"/admin/api/audit-events?{query}", headers=headers)
    assert response.status_code == 400, response.data


@pytest.mark.parametrize("path", ["/fhir/Patient/p1", "/fhir/Patient/p1/$everything", "/fhir/bulk/abc"])
def test_an_unexpected_error_leaves_as_a_500_outcome_without_details(client, setup, monkeypatch, path):
    headers, _ = setup

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ResourceRepository, "read", broken)
    monkeypatch.setattr("integration.store.exports.ExportJobRepository.get", broken)
    response = client.get(path, headers=headers)
    assert response.status_code == 500 and response.json["resourceType"] == "OperationOutcome"
    diagnostics = response.json["issue"][0]["diagnostics"]
    assert "secret" not in diagnostics and "request id" in diagnostics


def test_a_nul_in_an_audit_field_is_stored_as_a_replacement_character(db):
    with db.writer() as conn:
        AuditRepository(conn).record(
            AuditEntry(action="fhir.read", outcome=404, entity="Patient/a\x00b", detail={"x": "a\x00b"})
        )
    with db.reader() as conn:
        row = AuditRepository(conn).recent(1)[0]
    assert row["entity"] == "Patient/a\ufffdb" and orjson.loads(row["detail"]) == {"x": "a\x00b"}
