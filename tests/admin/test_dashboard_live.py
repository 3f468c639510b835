"""The dashboard over real HTTP (waitress on 127.0.0.1) with a requests.Session acting as the browser."""

from __future__ import annotations

import logging
import time

import requests

from integration.logs import JsonFormatter
from mappings.ids import resource_id
from tests.admin.browser import csrf_of, token_of
from tests.sync.conftest import assert_mirrors, load


def _run_page_until_finished(session: requests.Session, url: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = session.get(url, timeout=5).text
        if 'http-equiv="refresh"' not in page:
            return page
        time.sleep(0.1)
    raise AssertionError("the run page kept refreshing")


def test_a_browser_session_end_to_end(live_server, admin, db, ctx, receiver, caplog):
    caplog.set_level(logging.INFO)
    batch = load(db, ctx, patients=2)
    browser = requests.Session()
    origin = {"Origin": live_server}  # what a browser sends with every form POST

    form = browser.get(f"{live_server}/admin/login", timeout=5)
    assert form.status_code == 200 and form.headers["X-Frame-Options"] == "DENY"
    wrong = browser.post(
        f"{live_server}/admin/login",
        data={"token": "hz_wrong", "csrf_token": csrf_of(form.text)},
        headers=origin,
        timeout=5,
    )
    assert wrong.status_code == 401
    landed = browser.post(
        f"{live_server}/admin/login",
        data={"token": token_of(admin), "csrf_token": csrf_of(wrong.text)},
        headers=origin,
        timeout=5,
    )
    assert landed.status_code == 200 and landed.url == f"{live_server}/admin/" and "test-ehr" in landed.text
    set_cookie = landed.history[0].headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/admin;" in set_cookie
    session_id = browser.cookies.get("horizon_admin", path="/admin")
    assert session_id

    token = csrf_of(landed.text)
    cross = browser.post(
        f"{live_server}/admin/destinations/test-ehr/pause",
        data={"csrf_token": token},
        headers={"Origin": "http://evil.example"},
        timeout=5,
    )
    assert cross.status_code == 403
    paused = browser.post(
        f"{live_server}/admin/destinations/test-ehr/pause",
        data={"csrf_token": token},
        headers=origin,
        timeout=5,
    )
    assert paused.url == f"{live_server}/admin/" and ">Resume</button>" in paused.text
    browser.post(
        f"{live_server}/admin/destinations/test-ehr/resume",
        data={"csrf_token": token},
        headers=origin,
        timeout=5,
    )

    started = browser.post(
        f"{live_server}/admin/syncs",
        data={"csrf_token": token, "destination": "test-ehr"},
        headers=origin,
        timeout=5,
    )
    assert started.history[0].status_code == 303 and "/admin/syncs/" in started.url
    finished = _run_page_until_finished(browser, started.url)
    assert "done" in finished
    assert_mirrors(receiver, db)

    patient = resource_id("patient", batch["patients"][0]["id"])
    frame = browser.get(f"{live_server}/admin/summaries/frame", params={"patient": patient}, timeout=30)
    assert frame.status_code == 200 and "frame-ancestors 'self'" in frame.headers["Content-Security-Policy"]
    pdf = browser.get(
        f"{live_server}/admin/api/summaries/preview", params={"patient": patient, "format": "pdf"}, timeout=30
    )
    assert pdf.content.startswith(b"%PDF-")

    out = browser.post(f"{live_server}/admin/logout", data={"csrf_token": token}, headers=origin, timeout=5)
    assert out.url == f"{live_server}/admin/login"
    replay = requests.get(f"{live_server}/admin/", cookies={"horizon_admin": session_id}, timeout=5)
    assert replay.url == f"{live_server}/admin/login"  # the old session id no longer opens anything

    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert '"route": "/admin/syncs/<run_id>"' in logged or '"route":"/admin/syncs/<run_id>"' in logged
    for secret in (token_of(admin), session_id, token, patient):
        assert secret not in logged
