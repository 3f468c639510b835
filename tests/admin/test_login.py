"""Browser login to the admin dashboard: cookie flags, expiry, logout, revocation, refusals, rate limit."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from integration.auth.admin_session import CLOCK, COOKIE
from integration.logs import JsonFormatter
from integration.store.schema import admin_login_failure, admin_session, api_token, audit_event
from integration.store.tokens import TokenRepository
from tests.admin.browser import csrf_of, login, page_token, token_of


def _audits(db, action=None):
    with db.reader() as conn:
        query = select(audit_event).order_by(audit_event.c.pk)
        if action:
            query = query.where(audit_event.c.action == action)
        return [dict(r._mapping) for r in conn.execute(query)]


def _session_cookie(response) -> str:
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}=")]
    return header


def _settings(app, **changes):
    app.config["HORIZON_SETTINGS"] = dataclasses.replace(app.config["HORIZON_SETTINGS"], **changes)


def _cookie_value(client) -> str:
    return client.get_cookie(COOKIE, path="/admin").value


def test_login_sets_a_strict_session_cookie_and_stores_only_its_hash(client, admin, db):
    response = login(client, token_of(admin))
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    header = _session_cookie(response)
    assert "HttpOnly" in header and "Path=/admin;" in header + ";" and "SameSite=Strict" in header
    assert "Secure" not in header  # public_base_url is http://127.0.0.1:8000: loopback, no TLS to carry it
    session_id = _cookie_value(client)
    with db.reader() as conn:
        (row,) = conn.execute(select(admin_session)).all()
    assert row.session_hash == hashlib.sha256(session_id.encode()).hexdigest()
    assert session_id not in str(tuple(row)) and row.actor == "clinic-admin"
    assert row.expires_at - row.created_at == timedelta(seconds=28800)
    assert client.get("/admin/").status_code == 200
    (entry,) = _audits(db, "admin.login")
    assert (entry["actor"], entry["role"], entry["outcome"]) == ("clinic-admin", "admin", 303)


@pytest.mark.parametrize(
    ("base_url", "secure_setting", "secure"),
    [("https://admin.clinic.example", True, True), ("https://admin.clinic.example", False, False)],
)
def test_secure_flag_follows_the_public_base_url(app, client, admin, base_url, secure_setting, secure):
    _settings(app, public_base_url=base_url, admin_cookie_secure=secure_setting)
    header = _session_cookie(login(client, token_of(admin)))
    assert ("; Secure" in header) is secure


def test_plain_http_off_loopback_refuses_browser_login(app, client, admin, db):
    _settings(app, public_base_url="http://clinic.example")
    form = client.get("/admin/login")
    assert "needs https" in form.text and 'name="token"' not in form.text
    refused = client.post("/admin/login", data={"token": token_of(admin), "csrf_token": "x"})
    assert refused.status_code == 403 and f"{COOKIE}=" not in str(refused.headers)
    with db.reader() as conn:
        assert conn.execute(select(admin_session)).all() == []


def test_wrong_clinic_or_revoked_tokens_are_refused_and_audited_without_the_token(client, admin, db):
    with db.writer() as conn:
        clinic = TokenRepository(conn).create("charting", "clinic")
        gone = TokenRepository(conn).create("old-admin", "admin")
        TokenRepository(conn).revoke("old-admin")
    for attempt in ("hz_not-a-token", clinic, gone, ""):
        response = login(client, attempt)
        assert response.status_code == 401, attempt
        assert "unknown, revoked or not an admin token" in response.text
        assert client.get_cookie(COOKIE, path="/admin") is None
    rows = _audits(db, "admin.login")
    assert [(r["outcome"], r["actor"]) for r in rows] == [(401, None)] * 4
    assert all('"reason":"invalid-token"' in r["detail"] for r in rows)
    everything = str(_audits(db))
    assert clinic not in everything and gone not in everything and "hz_not-a-token" not in everything


def test_failed_logins_are_rate_limited_per_address(app, client, admin, db):
    _settings(app, admin_login_max_failures=3, admin_login_window_seconds=600)
    assert [login(client, f"hz_guess-{n}").status_code for n in range(3)] == [401, 401, 401]
    limited = login(client, token_of(admin))  # even the right token waits
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 601
    assert "Too many failed logins" in limited.text
    other = login(client, token_of(admin), **{"X-Forwarded-For": "10.0.0.9"})  # not trusted: same address
    assert other.status_code == 429
    assert [r["detail"] for r in _audits(db, "admin.login")][-2:] == ['{"reason":"rate-limited"}'] * 2
    with db.writer() as conn:  # the window passes
        conn.execute(update(admin_login_failure).values(failed_at=datetime.now(UTC) - timedelta(seconds=601)))
    assert login(client, token_of(admin)).status_code == 303


def test_login_form_needs_its_csrf_secret_and_our_origin(client, admin, db):
    token = token_of(admin)
    client.get("/admin/login")
    assert client.post("/admin/login", data={"token": token}).status_code == 403
    assert client.post("/admin/login", data={"token": token, "csrf_token": "forged"}).status_code == 403
    other = client.application.test_client()  # a secret from someone else's form, without its cookie
    assert (
        other.post(
            "/admin/login", data={"token": token, "csrf_token": csrf_of(client.get("/admin/login").text)}
        ).status_code
        == 403
    )
    cross = login(client, token, Origin="https://evil.example")
    assert cross.status_code == 403
    reasons = [r["detail"] for r in _audits(db, "admin.login")]
    assert reasons == ['{"reason":"csrf-token"}'] * 3 + ['{"reason":"cross-origin"}']
    with db.reader() as conn:
        assert conn.execute(select(admin_session)).all() == []
    assert login(client, token, Origin="http://localhost").status_code == 303  # our own origin


def test_login_rotates_the_session_id_and_ends_the_one_brought(client, admin, db):
    client.set_cookie(COOKIE, "planted-by-an-attacker", path="/admin")
    login(client, token_of(admin))
    first = _cookie_value(client)
    assert first != "planted-by-an-attacker"
    login(client, token_of(admin))
    second = _cookie_value(client)
    assert second != first
    stale = client.application.test_client()
    stale.set_cookie(COOKIE, first, path="/admin")
    assert stale.get("/admin/").status_code == 303  # the first session ended at the second login
    assert client.get("/admin/").status_code == 200


@pytest.fixture
def clock(app):
    now = [datetime.now(UTC)]
    app.extensions[CLOCK] = lambda: now[0]
    return now


def test_idle_timeout_ends_the_session(client, admin, db, clock):
    login(client, token_of(admin))
    clock[0] += timedelta(seconds=890)
    assert client.get("/admin/").status_code == 200  # used within 15 minutes: still live, and touched
    clock[0] += timedelta(seconds=890)
    assert client.get("/admin/").status_code == 200
    clock[0] += timedelta(seconds=901)
    assert client.get("/admin/api/destinations").json["error"]["code"] == "session-ended"
    ended = client.get("/admin/")
    assert ended.status_code == 303 and ended.headers["Location"] == "/admin/login"
    assert client.get_cookie(COOKIE, path="/admin") is None  # the dead cookie is cleared on the way
    assert '"reason":"idle"' in _audits(db, "auth.refused")[0]["detail"]


def test_absolute_lifetime_ends_a_busy_session(app, client, admin, db, clock):
    _settings(app, admin_session_lifetime_seconds=2000)
    login(client, token_of(admin))
    for _ in range(3):
        clock[0] += timedelta(seconds=600)
        assert client.get("/admin/").status_code == 200
    clock[0] += timedelta(seconds=600)  # 2400 s after login, though used 600 s ago
    assert client.get("/admin/").status_code == 303
    assert '"reason":"expired"' in _audits(db, "auth.refused")[0]["detail"]


def test_logout_revokes_the_session(client, admin, db):
    login(client, token_of(admin))
    session_id = _cookie_value(client)
    token = page_token(client)
    assert client.post("/admin/logout").status_code == 403  # no CSRF token: refused, still logged in
    assert client.get("/admin/").status_code == 200
    out = client.post("/admin/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"] == "/admin/login"
    assert client.get_cookie(COOKIE, path="/admin") is None
    replay = client.application.test_client()
    replay.set_cookie(COOKIE, session_id, path="/admin")
    assert replay.get("/admin/").status_code == 303
    assert replay.get("/admin/api/destinations").status_code == 401
    with db.reader() as conn:
        assert conn.execute(select(admin_session.c.revoked_at)).scalar() is not None
    assert [r["outcome"] for r in _audits(db, "admin.logout")] == [403, 303]


def test_revoking_the_token_ends_its_sessions(client, admin, db):
    login(client, token_of(admin))
    assert client.get("/admin/").status_code == 200
    with db.writer() as conn:
        assert TokenRepository(conn).revoke("clinic-admin")
    assert client.get("/admin/").status_code == 303
    with db.reader() as conn:
        assert conn.execute(select(admin_session.c.revoked_at)).scalar() is not None


def test_a_token_revoked_behind_the_repository_still_ends_the_session(client, admin, db):
    login(client, token_of(admin))
    with db.writer() as conn:  # e.g. restored from a backup: only the token row says revoked
        conn.execute(update(api_token).values(revoked_at=datetime.now(UTC)))
    assert client.get("/admin/").status_code == 303
    assert '"reason":"token-revoked"' in _audits(db, "auth.refused")[0]["detail"]


def test_no_token_or_session_id_reaches_the_logs_or_the_audit_log(client, admin, db, caplog):
    caplog.set_level(logging.DEBUG)
    token = token_of(admin)
    login(client, "hz_wrong-guess")
    login(client, token)
    session_id = _cookie_value(client)
    csrf = page_token(client)
    client.get("/admin/audit")
    client.post("/admin/destinations/test-ehr/pause", data={"csrf_token": csrf})
    client.post("/admin/logout", data={"csrf_token": csrf})
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "request" in logged  # the access log did run
    for secret in (token, session_id, csrf, "hz_wrong-guess"):
        assert secret not in logged
    with db.reader() as conn:
        dump = str([tuple(r) for r in conn.execute(text("SELECT * FROM audit_event"))])
        dump += str([tuple(r) for r in conn.execute(select(admin_session))])
    for secret in (token, session_id, csrf, "hz_wrong-guess"):
        assert secret not in dump
