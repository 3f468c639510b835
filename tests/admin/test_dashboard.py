"""The dashboard pages through a browser session, over real data and a real receiver on 127.0.0.1."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from integration.ingest import synthetic
from integration.store.schema import audit_event
from integration.sync.runs import RunRepository
from mappings.ids import resource_id
from tests.admin.browser import login, page_token, token_of
from tests.admin.conftest import wait_for_run
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.sync.conftest import assert_mirrors, load

PAGES = ["/admin/", "/admin/dead-letters", "/admin/summaries", "/admin/audit"]


@pytest.fixture
def browser(client, admin):
    assert login(client, token_of(admin)).status_code == 303
    return client


def _rows(db, action):
    with db.reader() as conn:
        query = select(audit_event).where(audit_event.c.action == action).order_by(audit_event.c.pk)
        return [dict(r._mapping) for r in conn.execute(query)]


def _run_id(response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


def test_every_page_is_strict_and_script_free(browser):
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Frame-Options"] == "DENY"
        policy = response.headers["Content-Security-Policy"]
        assert (
            "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script" not in policy
        )
        assert "<script" not in response.text and not re.search(r"\son[a-z]+=", response.text)
        assert not re.search(r'(src|href|action)="(https?:)?//', response.text)  # nothing from elsewhere
        assert response.headers["Cache-Control"] == "no-store"
    css = browser.get("/admin/static/admin.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_pages_and_forms_need_a_session(client, db):
    for path in PAGES:
        response = client.get(path)
        assert (response.status_code, response.headers["Location"]) == (303, "/admin/login"), path
    refused = client.post("/admin/destinations/test-ehr/pause")
    assert refused.status_code == 303
    assert [r["outcome"] for r in _rows(db, "auth.refused")] == [303] * 5
    assert _rows(db, "sync.pause") == []


def test_overview_shows_the_destination_state(browser, admin, db, ctx):
    load(db, ctx, patients=1)
    api = browser.get("/admin/api/destinations", headers=admin).json["destinations"][0]
    page = browser.get("/admin/").text
    assert "test-ehr" in page and "closed" in page and "never" in page and "not learned yet" in page
    assert f"<td>{api['cursor_lag']}</td>" in page and api["cursor_lag"] > 0
    (entry,) = _rows(db, "dashboard.overview")
    assert (entry["actor"], entry["outcome"]) == ("clinic-admin", 200)


def test_capabilities_button_reads_the_servers_capability_statement(browser, receiver, db):
    assert "not learned yet" in browser.get("/admin/").text
    response = browser.post("/admin/destinations/capabilities", data={"csrf_token": page_token(browser)})
    assert response.status_code == 303
    assert "/fhir/metadata" in [r[1] for r in receiver.requests]
    assert "transaction yes" in browser.get("/admin/").text
    assert [r["actor"] for r in _rows(db, "sync.capabilities.refresh")] == ["clinic-admin"]


def test_pause_and_resume_buttons(browser, admin, db):
    token = page_token(browser)
    paused = browser.post("/admin/destinations/test-ehr/pause", data={"csrf_token": token})
    assert (paused.status_code, paused.headers["Location"]) == (303, "/admin/")
    assert browser.get("/admin/api/destinations", headers=admin).json["destinations"][0]["paused"] is True
    assert ">Resume</button>" in browser.get("/admin/").text
    forged = browser.post("/admin/destinations/test-ehr/resume", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and "did not come from this dashboard" in forged.text
    cross = browser.post(
        "/admin/destinations/test-ehr/resume",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert browser.get("/admin/api/destinations", headers=admin).json["destinations"][0]["paused"] is True
    assert browser.post("/admin/destinations/test-ehr/resume", data={"csrf_token": token}).status_code == 303
    assert browser.get("/admin/api/destinations", headers=admin).json["destinations"][0]["paused"] is False
    assert browser.post("/admin/destinations/nowhere/pause", data={"csrf_token": token}).status_code == 404
    rows = _rows(db, "sync.pause") + _rows(db, "sync.resume")
    assert sorted((r["action"], r["outcome"], r["actor"]) for r in rows) == [
        ("sync.pause", 303, "clinic-admin"),
        ("sync.pause", 404, "clinic-admin"),
        ("sync.resume", 303, "clinic-admin"),
    ]


def test_trigger_a_sync_and_watch_it(browser, admin, db, ctx, receiver):
    load(db, ctx, patients=2)
    token = page_token(browser)
    run_id = _run_id(browser.post("/admin/syncs", data={"csrf_token": token, "destination": "test-ehr"}))
    run = wait_for_run(browser, admin, run_id)
    assert run["state"] == "done" and run["counts"]["sent"] > 0 and run["triggered_by"] == "clinic-admin"
    page = browser.get(f"/admin/syncs/{run_id}").text
    assert 'http-equiv="refresh"' not in page and "done" in page
    assert f"<td>{run['counts']['sent']}</td>" in page
    assert_mirrors(receiver, db)
    assert [r["entity"] for r in _rows(db, "sync.trigger")] == [f"SyncRun/{run_id}"]
    assert [r["entity"] for r in _rows(db, "sync.read") if r["detail"]] == [f"SyncRun/{run_id}"]


def test_a_running_run_page_refreshes_itself(browser, db):
    with db.writer() as conn:
        run, _ = RunRepository(conn).start("test-ehr", {}, "someone", datetime.now(UTC), 900)
    page = browser.get(f"/admin/syncs/{run['run_id']}").text
    assert '<meta http-equiv="refresh" content="2">' in page and "running" in page
    assert browser.get("/admin/syncs/unknown").status_code == 404


def test_dry_run_for_one_patient_sends_nothing(browser, db, ctx, receiver):
    batch = load(db, ctx, patients=2)
    mrn = batch["patients"][0]["id"]
    token = page_token(browser)
    form = {"csrf_token": token, "destination": "test-ehr", "patient": mrn, "dry_run": "on"}
    response = browser.post("/admin/syncs", data=form)
    assert response.status_code == 200 and "Nothing was sent" in response.text
    writes = int(re.search(r"<td>transaction</td><td>[^<]*</td>\s*<td>(\d+)", response.text).group(1))
    assert writes > 0
    assert receiver.writes == []
    (entry,) = _rows(db, "sync.dry-run")
    assert (entry["patient_id"], entry["actor"]) == (mrn, "clinic-admin")


def test_a_paused_destination_refuses_a_trigger_with_a_message(browser):
    token = page_token(browser)
    browser.post("/admin/destinations/test-ehr/pause", data={"csrf_token": token})
    refused = browser.post("/admin/syncs", data={"csrf_token": token, "destination": "test-ehr"})
    assert refused.status_code == 409 and "is paused; resume it first" in refused.text


def test_dead_letter_retry_button_sends_once(browser, admin, db, ctx, receiver):
    batch = load(db, ctx, patients=2)
    bad = resource_id("patient", batch["patients"][0]["id"])
    receiver.bad_ids[bad] = 400
    token = page_token(browser)
    run_id = _run_id(browser.post("/admin/syncs", data={"csrf_token": token, "destination": "test-ehr"}))
    assert wait_for_run(browser, admin, run_id)["counts"]["dead"] == 1
    page = browser.get("/admin/dead-letters?destination=test-ehr").text
    assert f"Patient/{bad}" in page and "<td>400</td>" in page and "error" in page
    pk = int(re.search(r'action="/admin/dead-letters/(\d+)/retry"', page).group(1))
    del receiver.bad_ids[bad]
    first = browser.post(f"/admin/dead-letters/{pk}/retry", data={"csrf_token": token})
    second = browser.post(f"/admin/dead-letters/{pk}/retry", data={"csrf_token": token})
    wait_for_run(browser, admin, _run_id(first))
    assert second.headers["Location"] == f"/admin/dead-letters?retried={pk}&outcome=unchanged"
    assert "was not dead any more" in browser.get(second.headers["Location"]).text
    deadline = time.monotonic() + 10
    while ("Patient", bad) not in receiver.store and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Counter(w[1] for w in receiver.writes)[f"Patient/{bad}"] == 1
    assert "No dead letters." in browser.get("/admin/dead-letters").text
    rows = _rows(db, "sync.dead-letter.retry")
    assert [(r["patient_id"], r["actor"]) for r in rows] == [(bad, "clinic-admin")] * 2


def test_summary_preview_page_frames_the_html(browser, clinic_headers, db):
    body = synthetic.batch(seed=2, n_patients=1, sessions_per_patient=6)
    post_batch(browser, clinic_headers, body)
    patient = patient_fhir_id(body["patients"][0]["id"])
    page = browser.get(f"/admin/summaries?patient={patient}&format=html").text
    assert '<iframe class="summary" sandbox' in page and f"/admin/summaries/frame?patient={patient}" in page
    for fmt in ("pdf", "ccda", "fhir"):
        assert f"/admin/api/summaries/preview?patient={patient}&amp;format={fmt}" in page
    frame = browser.get(f"/admin/summaries/frame?patient={patient}")
    assert frame.status_code == 200 and frame.text.startswith("<!DOCTYPE html>")
    policy = frame.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy and "sandbox" in policy and "script" not in policy
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    missing = browser.get("/admin/summaries/frame?patient=nobody")
    assert missing.status_code == 404 and "No such patient" in missing.text
    pdf = browser.get(f"/admin/api/summaries/preview?patient={patient}&format=pdf")
    assert pdf.data.startswith(b"%PDF-")
    previews = _rows(db, "summary.preview")
    assert [(r["patient_id"], r["outcome"]) for r in previews] == [
        (patient, 200),
        ("nobody", 404),
        (patient, 200),
    ]
    assert all(r["actor"] == "clinic-admin" for r in previews)
    assert [r["patient_id"] for r in _rows(db, "dashboard.summary")] == [patient]


def test_reflected_input_is_escaped(browser):
    page = browser.get('/admin/summaries?patient=<script>alert(1)</script>"x').text
    assert "<script>" not in page and "&lt;script&gt;" in page
    audit = browser.get('/admin/audit?action="><b>x').text
    assert "<b>x" not in audit


def test_audit_page_lists_and_filters(browser, db, ctx):
    batch = load(db, ctx, patients=1)
    mrn = batch["patients"][0]["id"]
    token = page_token(browser)
    browser.post("/admin/syncs", data={"csrf_token": token, "patient": mrn, "dry_run": "on"})
    everything = browser.get("/admin/audit").text
    assert "admin.login" in everything and "sync.dry-run" in everything
    filtered = browser.get(f"/admin/audit?patient={mrn}").text
    assert "sync.dry-run" in filtered and "admin.login" not in filtered
    reads = _rows(db, "audit.read")
    assert [(r["patient_id"], r["actor"]) for r in reads] == [(None, "clinic-admin"), (mrn, "clinic-admin")]


def test_summary_page_takes_a_clinic_mrn(browser, clinic_headers):
    body = synthetic.batch(seed=3, n_patients=1, sessions_per_patient=2)
    post_batch(browser, clinic_headers, body)
    mrn = body["patients"][0]["id"]
    patient = patient_fhir_id(mrn)
    for given in (mrn, patient, f"Patient/{patient}"):
        page = browser.get(f"/admin/summaries?patient={given}").text
        assert f"/admin/summaries/frame?patient={patient}" in page, given
        assert f'value="{given}"' in page


def test_a_trigger_for_all_names_the_paused_destination_it_skipped(two_destinations, browser, db, ctx):
    load(db, ctx, patients=1)
    token = page_token(browser)
    browser.post("/admin/destinations/other-ehr/pause", data={"csrf_token": token})
    started = browser.post("/admin/syncs", data={"csrf_token": token})
    assert started.status_code == 200 and "Not started" in started.text
    assert "other-ehr: destination other-ehr is paused; resume it first" in started.text
    assert "test-ehr: <a href=" in started.text
