"""Bulk Data $export over HTTP: kick-off, polling, manifest, download, cancel, 429, errors, scopes, Groups."""

import dataclasses
import random
import threading
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from integration.fhir_api.export_runner import ExportRunner, runner
from integration.ingest import synthetic
from integration.ingest.service import COLLECTIONS, ingest
from integration.store.schema import audit_event, fhir_resource
from mappings.group import referrer_group_id
from mappings.ids import resource_id
from tests.auth.test_smart_support import assertion, form, register
from tests.mappings.conformance import SCHEMA_PATH, schema_errors

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture
def settings(settings, tmp_path):
    return dataclasses.replace(settings, export_dir=str(tmp_path / "exports"), export_file_max_resources=50)


@pytest.fixture
def schema_available():
    if not SCHEMA_PATH.exists():
        pytest.skip(f"official R4 JSON schema not found at {SCHEMA_PATH}")


@pytest.fixture
def app(app):
    yield app
    runner(app).shutdown()


def load(db, ctx, batch):
    pairs = [(kind, r) for collection, kind in COLLECTIONS.items() for r in batch.get(collection, [])]
    outcomes = ingest(db, pairs, ctx=ctx, source="api")
    assert all(o.status != "rejected" for o in outcomes)


@pytest.fixture
def stored(db, ctx):
    batch = synthetic.batch(seed=21, n_patients=6, sessions_per_patient=1)
    load(db, ctx, batch)
    return batch


def token(client, db, name="ehr", scope="system/*.rs", **options):
    client_id = register(db, name=name, scope=scope, **options)
    response = client.post("/auth/token", data=form(assertion(client_id), scope=scope))
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def status_path(response):
    assert response.status_code == 202, response.data
    location = response.headers["Content-Location"]
    assert location.startswith("http://127.0.0.1:8000/fhir/bulk/")
    return location.removeprefix("http://127.0.0.1:8000")


def wait(client, path, headers, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get(path, headers=headers)
        if response.status_code != 202:
            return response
        assert response.headers["Retry-After"] and response.headers["X-Progress"]
        time.sleep(0.05)
    raise AssertionError("export did not finish in time")


def exported(client, manifest, headers):
    """{(type, id): content dict} of every output line, checking the NDJSON files on the way."""
    lines = {}
    for entry in manifest["output"]:
        path = entry["url"].removeprefix("http://127.0.0.1:8000")
        response = client.get(path, headers=headers)
        assert response.status_code == 200 and response.mimetype == "application/fhir+ndjson"
        rows = response.data.decode().splitlines()
        assert len(rows) == entry["count"] <= 50
        for row in rows:
            resource = orjson.loads(row)
            assert resource["resourceType"] == entry["type"]
            lines[(resource["resourceType"], resource["id"])] = resource
    return lines


def stored_rows(db, **where):
    t = fhir_resource.c
    query = select(t.resource_type, t.id, t.patient_id, t.content).where(t.deleted.is_(False))
    with db.reader() as conn:
        return {(r.resource_type, r.id): r for r in conn.execute(query)}


def test_system_export_cycle_serves_every_stored_resource_as_valid_ndjson(
    client, db, stored, schema_available
):
    headers = token(client, db)
    refused = client.get("/fhir/$export", headers=headers)
    assert refused.status_code == 400 and "respond-async" in refused.json["issue"][0]["diagnostics"]
    wrong_accept = client.get(
        "/fhir/$export", headers={**headers, "Prefer": "respond-async", "Accept": "text/html"}
    )
    assert wrong_accept.status_code == 400 and "Accept" in wrong_accept.json["issue"][0]["diagnostics"]
    bare = client.get("/fhir/$export?_type=Patient", headers={**headers, "Prefer": "respond-async"})
    assert bare.status_code == 202  # no Accept at all: served as application/fhir+json
    client.delete(status_path(bare), headers=headers)
    path = status_path(client.get("/fhir/$export", headers={**headers, **ASYNC}))
    done = wait(client, path, headers)
    assert done.status_code == 200 and done.mimetype == "application/json" and done.headers["Expires"]
    manifest = done.json
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"] == "http://127.0.0.1:8000/fhir/$export"
    assert manifest["transactionTime"].endswith("+00:00")
    assert len([e for e in manifest["output"] if e["type"] == "Observation"]) > 1  # split at 50 lines
    lines = exported(client, manifest, headers)
    rows = stored_rows(db)
    assert set(lines) == set(rows)
    assert all(orjson.loads(rows[key].content) == value for key, value in lines.items())
    assert [e for r in lines.values() for e in schema_errors(r)] == []
    with db.reader() as conn:
        actions = set(conn.execute(select(audit_event.c.action)).scalars())
    assert {"fhir.export.kickoff", "fhir.export.status", "fhir.export.download"} <= actions


def test_files_and_status_belong_to_the_client_that_started_the_export(client, db, stored):
    mine = token(client, db, name="ehr-a")
    theirs = token(client, db, name="ehr-b")
    path = status_path(client.get("/fhir/Patient/$export?_type=Patient", headers={**mine, **ASYNC}))
    manifest = wait(client, path, mine).json
    file_path = manifest["output"][0]["url"].removeprefix("http://127.0.0.1:8000")
    assert client.get(file_path, headers=mine).status_code == 200
    for p in (path, file_path):
        other = client.get(p, headers=theirs)
        assert other.status_code == 404 and other.json["resourceType"] == "OperationOutcome"
        assert client.get(p).status_code == 401
    assert client.delete(path, headers=theirs).status_code == 404
    assert client.get(f"{path}/../../metadata", headers=mine).status_code in (404, 200)
    assert client.get(f"{path}/nope.ndjson", headers=mine).status_code == 404


def test_second_export_gets_429_until_the_first_is_cancelled(client, db, stored, monkeypatch):
    held: list[str] = []
    monkeypatch.setattr(ExportRunner, "submit", lambda self, job_id: held.append(job_id))
    headers = token(client, db)
    path = status_path(client.get("/fhir/$export", headers={**headers, **ASYNC}))
    polled = client.get(path, headers=headers)
    assert polled.status_code == 202 and polled.headers["X-Progress"] == "queued"
    busy = client.get("/fhir/Patient/$export", headers={**headers, **ASYNC})
    assert busy.status_code == 429 and int(busy.headers["Retry-After"]) > 0
    assert busy.json["issue"][0]["code"] == "throttled"
    cancelled = client.delete(path, headers=headers)
    assert cancelled.status_code == 202
    gone = client.get(path, headers=headers)
    assert gone.status_code == 404 and gone.json["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient/$export", headers={**headers, **ASYNC}).status_code == 202


def test_cancel_after_completion_removes_the_files(client, db, stored, settings):
    headers = token(client, db)
    path = status_path(client.get("/fhir/$export?_type=Patient", headers={**headers, **ASYNC}))
    wait(client, path, headers)
    job_id = path.rsplit("/", 1)[1]
    directory = Path(settings.export_dir) / job_id
    assert any(directory.iterdir())
    assert client.delete(path, headers=headers).status_code == 202
    assert not directory.exists()
    assert client.get(path, headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("_type=Basic", "Basic"),
        ("_type=Patient,Nope", "Nope"),
        ("_outputFormat=text/csv", "_outputFormat"),
        ("_since=yesterday", "_since"),
        ("_since=2026-01-01", "_since"),
        ("_typeFilter=Observation%3Fcode%3D1", "_typeFilter"),
        ("_elements=id", "_elements"),
    ],
)
def test_bad_kickoff_parameters_are_400_operation_outcomes(client, db, query, fragment):
    headers = token(client, db)
    response = client.get(f"/fhir/$export?{query}", headers={**headers, **ASYNC})
    assert response.status_code == 400, response.json
    assert response.json["resourceType"] == "OperationOutcome"
    assert fragment in response.json["issue"][0]["diagnostics"]


def test_scopes_limit_the_types_and_formats_are_accepted(client, db, stored):
    narrow = token(client, db, name="narrow", scope="system/Patient.rs")
    forbidden = client.get("/fhir/$export?_type=Observation", headers={**narrow, **ASYNC})
    assert forbidden.status_code == 403
    path = status_path(client.get("/fhir/$export?_outputFormat=ndjson", headers={**narrow, **ASYNC}))
    manifest = wait(client, path, narrow).json
    assert {e["type"] for e in manifest["output"]} == {"Patient"}


def test_post_kickoff_with_parameters_equals_get(client, db, stored):
    headers = token(client, db)
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Patient,Encounter"},
            {"name": "_outputFormat", "valueString": "application/ndjson"},
        ],
    }
    path = status_path(client.post("/fhir/Patient/$export", json=body, headers={**headers, **ASYNC}))
    manifest = wait(client, path, headers).json
    assert {e["type"] for e in manifest["output"]} == {"Patient", "Encounter"}
    bad = client.post("/fhir/$export", json={"resourceType": "Bundle"}, headers={**headers, **ASYNC})
    assert bad.status_code == 400


def test_patient_and_group_exports_hold_only_compartment_data(client, db, stored):
    headers = token(client, db)
    rows = stored_rows(db)
    path = status_path(client.get("/fhir/Patient/$export", headers={**headers, **ASYNC}))
    lines = exported(client, wait(client, path, headers).json, headers)
    assert set(lines) == {k for k, r in rows.items() if r.patient_id is not None}
    referrer = stored["referrals"][0]["practitioner_id"]
    members = {
        resource_id("patient", r["patient_id"])
        for r in stored["referrals"]
        if r["practitioner_id"] == referrer
    }
    group = referrer_group_id(referrer)
    path = status_path(client.get(f"/fhir/Group/{group}/$export", headers={**headers, **ASYNC}))
    lines = exported(client, wait(client, path, headers).json, headers)
    assert set(lines) == {k for k, r in rows.items() if r.patient_id in members}
    assert client.get("/fhir/Group/unknown/$export", headers={**headers, **ASYNC}).status_code == 404


def test_a_group_restricted_client_exports_only_its_group(client, db, stored):
    referrer = stored["referrals"][0]["practitioner_id"]
    members = {
        resource_id("patient", r["patient_id"])
        for r in stored["referrals"]
        if r["practitioner_id"] == referrer
    }
    other = next(r["practitioner_id"] for r in stored["referrals"] if r["practitioner_id"] != referrer)
    headers = token(client, db, name="referrer-ehr", group_id=referrer_group_id(referrer))
    refused = client.get(f"/fhir/Group/{referrer_group_id(other)}/$export", headers={**headers, **ASYNC})
    assert refused.status_code == 404
    rows = stored_rows(db)
    for kickoff in (
        "/fhir/$export",
        "/fhir/Patient/$export",
        f"/fhir/Group/{referrer_group_id(referrer)}/$export",
    ):
        path = status_path(client.get(kickoff, headers={**headers, **ASYNC}))
        lines = exported(client, wait(client, path, headers).json, headers)
        patients = {rows[k].patient_id for k in lines}
        assert patients - {None} == members, kickoff
        assert all(k[0] != "Group" or k[1] == referrer_group_id(referrer) for k in lines)
        if kickoff == "/fhir/$export":  # non-compartment resources (Practitioner, ...) are visible to all
            assert None in patients


def _new_patient_batch(base, k):
    rng = random.Random(k)
    referrers = [p["id"] for p in base["practitioners"] if p["role"] == "referrer"]
    attendings = [p["id"] for p in base["practitioners"] if p["role"] in ("physician", "anesthesiologist")]
    nurses = [p["id"] for p in base["practitioners"] if p["role"] == "nurse"]
    pats = synthetic.patients(rng, 1, referrers, first=5000 + k)
    return {
        "patients": pats,
        "referrals": synthetic.referrals(rng, pats, referrers),
        "sessions": synthetic.sessions(rng, [p["id"] for p in pats], attendings, nurses, 1),
    }


def _versions(client, manifest, headers):
    return {(t, i, r["meta"]["versionId"]) for (t, i), r in exported(client, manifest, headers).items()}


def test_every_version_is_in_exactly_one_of_export_t0_and_since_t0_with_intake_running(
    client, db, ctx, stored
):
    headers = token(client, db)
    stop = threading.Event()
    written: list[int] = []

    def intake() -> None:
        k = 0
        while not stop.is_set() and k < 200:
            load(db, ctx, _new_patient_batch(stored, k))
            written.append(k)
            k += 1

    thread = threading.Thread(target=intake)
    thread.start()
    try:
        while len(written) < 2:
            time.sleep(0.01)
        first = wait(
            client, status_path(client.get("/fhir/$export", headers={**headers, **ASYNC})), headers
        ).json
        started = len(written)
        while len(written) < started + 2:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    t0 = first["transactionTime"]
    path = status_path(client.get("/fhir/$export", query_string={"_since": t0}, headers={**headers, **ASYNC}))
    second = wait(client, path, headers).json
    s1, s2 = _versions(client, first, headers), _versions(client, second, headers)
    assert s1 and s2 and not (s1 & s2)
    ids1, ids2 = {(t, i) for t, i, _ in s1}, {(t, i) for t, i, _ in s2}
    rows = stored_rows(db)
    current = {k: orjson.loads(r.content)["meta"] for k, r in rows.items()}
    for key, meta in current.items():
        if meta["lastUpdated"] <= t0:
            assert (*key, meta["versionId"]) in s1 and key not in ids2, key
        else:
            assert (*key, meta["versionId"]) in s2, key
            if meta["versionId"] == "1":  # created after T0: only in the second export
                assert key not in ids1, key
    assert ids1 | ids2 == set(current)


def test_since_export_lists_deletions_after_the_previous_export(client, db, ctx, stored):
    headers = token(client, db)
    first = wait(client, status_path(client.get("/fhir/$export", headers={**headers, **ASYNC})), headers).json
    session = dict(next(s for s in stored["sessions"] if len(s.get("vitals", [])) > 1))
    dropped = session["vitals"][0]
    session["vitals"] = session["vitals"][1:]
    load(db, ctx, {"sessions": [session]})
    query = {"_since": first["transactionTime"], "_type": "Observation"}
    path = status_path(client.get("/fhir/$export", query_string=query, headers={**headers, **ASYNC}))
    manifest = wait(client, path, headers).json
    assert [e["type"] for e in manifest["deleted"]] == ["Observation"]
    lines = client.get(manifest["deleted"][0]["url"].removeprefix("http://127.0.0.1:8000"), headers=headers)
    bundles = [orjson.loads(line) for line in lines.data.splitlines()]
    assert bundles and all(b["type"] == "transaction" for b in bundles)
    urls = {b["entry"][0]["request"]["url"] for b in bundles}
    assert all(b["entry"][0]["request"]["method"] == "DELETE" for b in bundles)
    with db.reader() as conn:
        gone = set(
            conn.execute(
                select(fhir_resource.c.id).where(
                    fhir_resource.c.resource_type == "Observation", fhir_resource.c.deleted.is_(True)
                )
            ).scalars()
        )
    assert gone and urls == {f"Observation/{i}" for i in gone}
    assert dropped  # the reading removed from the session is what was deleted
