"""The admin JSON endpoints with a browser session instead of a bearer token: CSRF and origin on writes."""

from __future__ import annotations

from sqlalchemy import select

from integration.auth import csrf
from integration.auth.admin_session import COOKIE
from integration.ingest import synthetic
from integration.store.schema import audit_event
from tests.admin.browser import login, token_of
from tests.summaries.conftest import patient_fhir_id, post_batch

PAUSE = "/admin/api/destinations/test-ehr/pause"


def _paused(client) -> bool:
    return client.get("/admin/api/destinations").json["destinations"][0]["paused"]


def _session_token(client) -> str:
    return csrf.token_for(client.get_cookie(COOKIE, path="/admin").value)


def _rows(db, action):
    with db.reader() as conn:
        query = select(audit_event).where(audit_event.c.action == action).order_by(audit_event.c.pk)
        return [dict(r._mapping) for r in conn.execute(query)]


def test_reads_need_only_the_session(client, admin, db):
    login(client, token_of(admin))
    response = client.get("/admin/api/destinations")
    assert response.status_code == 200 and response.json["destinations"][0]["name"] == "test-ehr"
    (entry,) = _rows(db, "sync.destinations.read")
    assert (entry["actor"], entry["outcome"]) == ("clinic-admin", 200)
    assert '"auth":"session"' in entry["detail"]
    assert client.get("/admin/api/audit-events?_count=5").status_code == 200


def test_writes_with_the_session_need_the_csrf_token_and_our_origin(client, admin, db):
    login(client, token_of(admin))
    missing = client.post(PAUSE)
    assert (missing.status_code, missing.json["error"]["code"]) == (403, "csrf-token")
    wrong = client.post(PAUSE, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    token = _session_token(client)
    cross = client.post(PAUSE, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
    assert (cross.status_code, cross.json["error"]["code"]) == (403, "cross-origin")
    referer = client.post(PAUSE, headers={"X-CSRF-Token": token, "Referer": "https://evil.example/x"})
    assert referer.status_code == 403
    opaque = client.post(PAUSE, headers={"X-CSRF-Token": token, "Origin": "null"})
    assert opaque.status_code == 403
    assert _paused(client) is False
    refusals = [r["detail"] for r in _rows(db, "auth.refused")]
    assert [('"csrf-token"' in d, '"cross-origin"' in d) for d in refusals] == [(True, False)] * 2 + [
        (False, True)
    ] * 3
    ok = client.post(PAUSE, headers={"X-CSRF-Token": token, "Origin": "http://localhost"})
    assert ok.status_code == 200 and _paused(client) is True
    (entry,) = _rows(db, "sync.pause")
    assert (entry["actor"], entry["outcome"]) == ("clinic-admin", 200)


def test_bearer_requests_are_unchanged_and_need_no_csrf(client, admin, db):
    login(client, token_of(admin))  # a session cookie is present too: the bearer header decides
    assert client.post(PAUSE, headers=admin).status_code == 200
    assert client.post("/admin/api/destinations/test-ehr/resume", headers=admin).json["paused"] is False
    anonymous = client.application.test_client()
    refused = anonymous.post(PAUSE)
    assert (refused.status_code, refused.json["error"]["code"]) == (401, "missing-token")
    bad = anonymous.post(PAUSE, headers={"Authorization": "Bearer hz_nope"})
    assert (bad.status_code, bad.json["error"]["code"]) == (401, "invalid-token")


def test_an_unknown_session_cookie_is_a_401(client):
    client.set_cookie(COOKIE, "not-a-session", path="/admin")
    response = client.get("/admin/api/destinations")
    assert (response.status_code, response.json["error"]["code"]) == (401, "session-ended")


def test_summary_preview_in_the_browser(client, admin, clinic_headers, db):
    body = synthetic.batch(seed=2, n_patients=1, sessions_per_patient=6)
    post_batch(client, clinic_headers, body)
    patient = patient_fhir_id(body["patients"][0]["id"])
    login(client, token_of(admin))
    pdf = client.get(f"/admin/api/summaries/preview?patient={patient}&format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    html = client.get(f"/admin/api/summaries/preview?patient={patient}&format=html")
    assert html.status_code == 200 and "frame-ancestors 'none'" in html.headers["Content-Security-Policy"]
    rows = _rows(db, "summary.preview")
    assert [(r["patient_id"], r["actor"], r["outcome"]) for r in rows] == [(patient, "clinic-admin", 200)] * 2
    # Preparing deliveries is a write: the session alone is not enough.
    assert client.post("/admin/api/summaries", json={"patient": patient, "dry_run": True}).status_code == 403
    dry = client.post(
        "/admin/api/summaries",
        json={"patient": patient, "dry_run": True},
        headers={"X-CSRF-Token": _session_token(client)},
    )
    assert dry.status_code == 200 and dry.json["dry_run"] is True
