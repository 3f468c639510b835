"""POST /admin/api/summaries on both databases: auth, validation, dry run, prepare once, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from integration.store.schema import audit_event
from integration.summaries.ledger import SummaryLedger
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import referrer, series_batch

URL = "/admin/api/summaries"


@pytest.fixture
def admin_headers(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def patient(app, client, clinic_headers) -> str:
    body = series_batch()
    post_batch(client, clinic_headers, body)
    app.extensions["horizon.referrers"] = {
        "dr-ref": referrer(),
        "hook": referrer(
            name="hook",
            channel="webhook",
            url="https://hooks.example.org/x",
            secret_env="HOOK_SECRET",
            triggers=["safety-signal"],
        ),
    }
    return patient_fhir_id(body["patients"][0]["id"])


def _audits(db):
    with db.reader() as conn:
        rows = conn.execute(select(audit_event).where(audit_event.c.action == "summary.prepare"))
        return [dict(r._mapping) for r in rows]


def test_admin_only(client, clinic_headers):
    assert client.post(URL, json={}).status_code == 401
    assert client.post(URL, json={}, headers=clinic_headers).status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"patient": 7}, "'patient'"),
        ({"dry_run": "yes"}, "'dry_run'"),
        ({"colour": 1}, "unknown field"),
        ({"referrer": "nobody"}, "not a configured destination"),
    ],
)
def test_bad_requests(client, admin_headers, patient, body, message):
    response = client.post(URL, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert response.json["resourceType"] == "OperationOutcome"
    assert message in response.json["issue"][0]["diagnostics"]


def test_unknown_patient_is_404(client, admin_headers, patient):
    response = client.post(URL, json={"patient": "nope"}, headers=admin_headers)
    assert response.status_code == 404


def test_dry_run_then_prepare_once(client, admin_headers, patient, db):
    dry = client.post(URL, json={"patient": patient, "dry_run": True}, headers=admin_headers)
    assert dry.status_code == 200
    would = dry.json["prepared"]
    assert sorted(w["referrer"] for w in would) == ["dr-ref", "hook"]
    with db.reader() as conn:
        assert SummaryLedger(conn).entries() == []
    done = client.post(URL, json={"patient": patient}, headers=admin_headers)
    assert done.status_code == 200
    prepared = done.json["prepared"]
    assert sorted((p["referrer"], p["content_hash"]) for p in prepared) == sorted(
        (w["referrer"], w["content_hash"]) for w in would
    )
    hook = next(p for p in prepared if p["referrer"] == "hook")
    assert (hook["reasons"], hook["version"], hook["replaces"], hook["channel"]) == (
        ["safety-signal"],
        1,
        None,
        "webhook",
    )
    again = client.post(URL, json={"referrer": "dr-ref"}, headers=admin_headers)
    assert again.json["prepared"] == []
    assert [s["detail"] for s in again.json["skipped"]] == ["nothing new to send"]
    audits = _audits(db)
    assert [(a["patient_id"], a["outcome"]) for a in audits] == [(patient, 200), (patient, 200), (None, 200)]
    assert audits[0]["actor"] == "clinic-admin"
