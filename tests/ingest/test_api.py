"""The intake API end to end on a real database: auth, validation answers, idempotency, versions."""

import copy

import orjson
import pytest
from sqlalchemy import func, select

from integration.ingest import synthetic
from integration.store.schema import audit_event, clinic_record


@pytest.fixture
def batch():
    return synthetic.batch(seed=7, n_patients=2, sessions_per_patient=2)


def _count(db, table=clinic_record):
    with db.reader() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _post(client, headers, body):
    return client.post(
        "/api/v1/batch", data=orjson.dumps(body), headers=headers, content_type="application/json"
    )


def test_batch_accepts_records_that_refer_to_each_other(client, clinic_headers, batch, db):
    response = _post(client, clinic_headers, batch)
    assert response.status_code == 200, response.json
    body = response.json
    total = sum(len(v) for v in batch.values())
    assert body["summary"] == {"accepted": total, "unchanged": 0, "rejected": 0}
    assert all(r["version"] == 1 and r["errors"] == [] for r in body["results"])
    assert _count(db) == total


def test_same_session_twice_is_stored_once_and_changed_makes_a_version(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    session = copy.deepcopy(batch["sessions"][0])
    url = f"/api/v1/sessions/{session['id']}"
    again = client.put(url, json=session, headers=clinic_headers)
    assert again.status_code == 200
    assert again.json["status"] == "unchanged" and again.json["version"] == 1
    before = _count(db)
    session["vitals"][0]["heart_rate"] = 71 if session["vitals"][0].get("heart_rate") != 71 else 72
    changed = client.put(url, json=session, headers=clinic_headers)
    assert changed.status_code == 200
    assert (changed.json["status"], changed.json["version"]) == ("accepted", 2)
    assert _count(db) == before + 1
    stored = client.get(url, headers=clinic_headers).json
    assert stored["version"] == 2 and stored["record"] == session and stored["source"] == "api"
    assert "received_at" in stored
    first = client.get(url + "?version=1", headers=clinic_headers).json
    assert first["version"] == 1 and first["record"] == batch["sessions"][0]


def test_whole_batch_again_is_all_unchanged(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    before = _count(db)
    body = _post(client, clinic_headers, batch).json
    assert body["summary"]["unchanged"] == sum(len(v) for v in batch.values())
    assert _count(db) == before


def test_put_creates_with_201_and_get_returns_it(client, clinic_headers, batch):
    practitioner = batch["practitioners"][0]
    response = client.put(
        f"/api/v1/practitioners/{practitioner['id']}", json=practitioner, headers=clinic_headers
    )
    assert response.status_code == 201
    assert response.json == {
        "kind": "practitioner",
        "id": practitioner["id"],
        "status": "accepted",
        "version": 1,
        "errors": [],
    }


def test_put_takes_the_id_from_the_url_when_the_body_has_none(client, clinic_headers, batch):
    practitioner = dict(batch["practitioners"][0])
    record_id = practitioner.pop("id")
    assert (
        client.put(
            f"/api/v1/practitioners/{record_id}", json=practitioner, headers=clinic_headers
        ).status_code
        == 201
    )


def test_put_with_other_id_in_body_is_rejected(client, clinic_headers, batch):
    practitioner = batch["practitioners"][0]
    response = client.put("/api/v1/practitioners/other-id", json=practitioner, headers=clinic_headers)
    assert response.status_code == 422
    assert response.json["errors"][0]["rule"] == "id-mismatch"


def test_rejected_record_names_kind_id_path_rule_and_stores_nothing(client, clinic_headers, batch, db):
    _post(client, clinic_headers, {"practitioners": batch["practitioners"], "patients": batch["patients"]})
    before = _count(db)
    session = copy.deepcopy(batch["sessions"][0])
    session["vitals"][0].update(systolic=80, diastolic=95)
    response = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert response.status_code == 422
    error = response.json["errors"][0]
    assert error["kind"] == "session" and error["id"] == session["id"]
    assert error["path"] == "vitals[0].diastolic" and error["rule"] == "diastolic-below-systolic"
    assert _count(db) == before


def test_unknown_patient_is_a_reference_error(client, clinic_headers, batch):
    _post(client, clinic_headers, {"practitioners": batch["practitioners"]})
    session = batch["sessions"][0]
    response = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert response.status_code == 422
    assert {(e["path"], e["rule"]) for e in response.json["errors"]} == {("patient_id", "reference")}


def test_in_a_batch_good_records_pass_and_dependants_of_bad_ones_fail(client, clinic_headers, batch, db):
    bad_patient = batch["patients"][0]
    bad_patient["birth_date"] = "1990-02-30"
    body = _post(client, clinic_headers, batch).json
    by_key = {(r["kind"], r["id"]): r for r in body["results"]}
    assert by_key[("patient", bad_patient["id"])]["errors"][0]["rule"] == "date"
    for session in batch["sessions"]:
        result = by_key[("session", session["id"])]
        if session["patient_id"] == bad_patient["id"]:
            assert result["status"] == "rejected" and result["errors"][0]["rule"] == "reference"
        else:
            assert result["status"] == "accepted"
    assert body["summary"]["accepted"] > 0 and body["summary"]["rejected"] > 0


def test_same_id_twice_with_different_content_in_one_batch(client, clinic_headers, batch):
    p1 = batch["practitioners"][0]
    p2 = dict(p1, family=p1["family"] + "x")
    body = _post(client, clinic_headers, {"practitioners": [p1, p2, dict(p1)]}).json
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "unchanged"]
    assert body["results"][1]["errors"][0]["rule"] == "duplicate-in-batch"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed-json"),
        (b"", "application/json", 400, "empty-body"),
        (b"[]", "application/json", 400, "invalid-batch"),
        (b'{"patients": {}}', "application/json", 400, "invalid-batch"),
        (b'{"observations": []}', "application/json", 400, "invalid-batch"),
        (b"{}", "text/plain", 415, "unsupported-media-type"),
    ],
)
def test_malformed_batches_get_clear_4xx(client, clinic_headers, body, content_type, status, code):
    response = client.post("/api/v1/batch", data=body, headers=clinic_headers, content_type=content_type)
    assert response.status_code == status
    assert response.json["error"]["code"] == code


@pytest.mark.parametrize("record", [None, [], "x", 3, {"id": 5}])
def test_non_object_records_are_rejected_not_500(client, clinic_headers, record):
    response = _post(client, clinic_headers, {"patients": [record]})
    assert response.status_code == 200
    assert response.json["results"][0]["status"] == "rejected"


def test_oversized_body_is_413(app, client, clinic_headers):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post(
        "/api/v1/batch",
        data=b"[" + b" " * 2000 + b"]",
        headers=clinic_headers,
        content_type="application/json",
    )
    assert response.status_code == 413


def test_too_many_records_is_413(app, client, clinic_headers, batch):
    from dataclasses import replace

    app.config["HORIZON_SETTINGS"] = replace(app.config["HORIZON_SETTINGS"], max_batch_records=2)
    response = _post(
        client, clinic_headers, {"practitioners": batch["practitioners"][:3] * 1 + batch["practitioners"][:1]}
    )
    assert response.status_code == 413


def test_unknown_collection_is_404(client, clinic_headers):
    assert client.get("/api/v1/observations/1", headers=clinic_headers).status_code == 404


def test_missing_record_is_404(client, clinic_headers):
    response = client.get("/api/v1/patients/nobody", headers=clinic_headers)
    assert response.status_code == 404 and response.json["error"]["code"] == "not-found"


def test_every_request_is_audited_with_patient(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    patient = batch["patients"][0]
    client.get(f"/api/v1/patients/{patient['id']}", headers=clinic_headers)
    client.get("/api/v1/patients/x")  # refused: no token
    with db.reader() as conn:
        rows = conn.execute(select(audit_event).order_by(audit_event.c.pk)).mappings().all()
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("intake.batch", 200),
        ("intake.read", 200),
        ("auth.refused", 401),
    ]
    assert rows[0]["actor"] == "charting-system" and rows[0]["role"] == "clinic"
    assert rows[1]["patient_id"] == patient["id"] and rows[1]["entity"] == f"patient/{patient['id']}"
    assert rows[2]["actor"] is None
