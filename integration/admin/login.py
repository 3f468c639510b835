"""`GET|POST /admin/login` and `POST /admin/logout`: browser login with the admin's own API token.

Why the token and no password: admins already hold a 256-bit admin token (`flask --app wsgi tokens
create --role admin`), stored only as a digest and revocable; a password store would add a second,
weaker secret to manage. The token is pasted once, checked in constant time, and never kept by the
browser: the browser gets a fresh random session id (never one it brought, so no fixation).

The login form is protected against login CSRF with a double-submit secret (a short-lived cookie on
/admin/login whose HMAC the form carries) and the Origin check. Failed attempts are audited without
the token and counted per client address; past `admin_login_max_failures` within
`admin_login_window_seconds` every attempt from that address gets 429, even with a good token.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, g, redirect, request

from integration.admin.web import error_page, page
from integration.audit import audit
from integration.auth import admin_session, csrf
from integration.settings import Settings
from integration.store.admin_sessions import AdminSessionRepository, LoginFailures, session_hash
from integration.store.tokens import digest

bp = Blueprint("admin_login", __name__, url_prefix="/admin", template_folder="templates")

LOGIN_COOKIE = "horizon_admin_login"
LOGIN_PATH = "/admin/login"
LOGIN_FORM_SECONDS = 600
MAX_TOKEN_CHARS = 200
PURGE_AFTER = timedelta(days=1)


def _settings() -> Settings:
    return current_app.config["HORIZON_SETTINGS"]


@bp.get("/login")
def login_form() -> Response:
    return _form(200)


def _form(status: int, error: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The login page with a fresh login-CSRF secret (cookie) and its HMAC (form field)."""
    settings = _settings()
    secure, refusal = admin_session.cookie_secure(settings)
    nonce = secrets.token_urlsafe(32)
    response = page(
        "login.html",
        status,
        error=error or refusal,
        login_disabled=refusal,
        login_token=csrf.token_for(nonce),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_FORM_SECONDS,
        path=LOGIN_PATH,
        secure=secure,
        httponly=True,
        samesite="Strict",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.post("/login")
def login() -> Response:
    entry = audit("admin.login")
    settings = _settings()
    _secure, refusal = admin_session.cookie_secure(settings)
    if refusal:
        entry.detail = {"reason": "insecure-transport"}
        return _form(403, refusal)
    if not csrf.same_origin(request, settings.public_base_url):
        entry.detail = {"reason": "cross-origin"}
        return _form(403, "This login came from another site and was refused.")
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not csrf.token_matches(nonce, request.form.get(csrf.FIELD, "")):
        entry.detail = {"reason": "csrf-token"}
        return _form(403, "The login form expired. Please try again.")
    now = datetime.now(UTC)
    window_start = now - timedelta(seconds=settings.admin_login_window_seconds)
    address = (request.remote_addr or "unknown")[:64]
    db = current_app.extensions["horizon.db"]
    with db.reader() as conn:
        failures = LoginFailures(conn)
        if failures.count(address, window_start) >= settings.admin_login_max_failures:
            oldest = failures.oldest(address, window_start) or now
            wait = max(int((oldest - window_start).total_seconds()) + 1, 1)
            entry.detail = {"reason": "rate-limited"}
            return _form(
                429, "Too many failed logins from this address. Try again later.", {"Retry-After": str(wait)}
            )
    token = request.form.get("token", "").strip()
    created = None
    if token and len(token) <= MAX_TOKEN_CHARS:
        with db.writer() as conn:
            sessions = AdminSessionRepository(conn)
            old = request.cookies.get(admin_session.COOKIE)
            if old:  # whatever session the browser brought ends here; the new one gets a new id
                sessions.revoke(session_hash(old), now)
            sessions.purge(now - PURGE_AFTER)
            created = sessions.create(
                digest(token), admin_session.now(), settings.admin_session_lifetime_seconds
            )
    if created is None:
        entry.detail = {"reason": "invalid-token"}
        with db.writer() as conn:
            LoginFailures(conn).record(address, now, window_start)
        return _form(401, "That token is unknown, revoked or not an admin token.")
    session_id, session = created
    entry.actor, entry.role = session.actor, session.role
    g.actor, g.role = session.actor, session.role
    response = redirect("/admin/", 303)
    admin_session.set_cookie(response, session_id, settings)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, samesite="Strict")
    return response


@bp.post("/logout")
def logout() -> Response:
    entry = audit("admin.logout")
    settings = _settings()
    session, reason = admin_session.current()
    if session is None:
        entry.detail = {"reason": reason}
    else:
        entry.actor, entry.role = session.actor, session.role
        refusal = admin_session.csrf_refusal()
        if refusal is not None:
            entry.detail = {"reason": refusal}
            return error_page(403, "Logout refused: the request did not come from this dashboard.")
        with current_app.extensions["horizon.db"].writer() as conn:
            AdminSessionRepository(conn).revoke(session.session_hash, admin_session.now())
    response = redirect(LOGIN_PATH, 303)
    admin_session.clear_cookie(response, settings)
    return response
