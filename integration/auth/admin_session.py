"""Admin browser sessions: the cookie, its checks on every request, and admin auth by bearer OR cookie.

An admin logs in by pasting their admin API token once (integration/admin/login.py); the browser then
holds only a random session id in an HttpOnly, SameSite=Strict cookie scoped to /admin. The session is
checked on every request against the database (revoked, token revoked, absolute lifetime, idle
timeout), so ending it anywhere ends it everywhere. Requests with an Authorization header take the
bearer path exactly as before and need no CSRF token; cookie requests that change state must pass
integration/auth/csrf.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Response, current_app, g, request

from integration.audit import audit
from integration.auth import csrf
from integration.auth.api_tokens import require_role
from integration.http_errors import ApiError
from integration.net import is_loopback
from integration.settings import Settings
from integration.store.admin_sessions import AdminSession, AdminSessionRepository

COOKIE = "horizon_admin"
COOKIE_PATH = "/admin"
CLOCK = "horizon.admin_clock"  # app.extensions key: a zero-argument callable returning aware UTC now
# last_seen_at is written at most this often, so browsing is not one write per request; the idle
# timeout then ends a session up to this much early, never late.
TOUCH_EVERY = timedelta(seconds=5)


def now() -> datetime:
    clock: Callable[[], datetime] | None = current_app.extensions.get(CLOCK)
    return clock() if clock else datetime.now(UTC)


def cookie_secure(settings: Settings) -> tuple[bool, str | None]:
    """(Secure flag, None) for the session cookie, or (True, why browser login is refused).

    Browsers treat http://127.0.0.1 and http://localhost as secure contexts, but `make run` has no TLS
    to carry a Secure cookie and ordinary HTTP clients would drop it: there the flag is left off, as
    nothing leaves the machine. Plain http anywhere else would send the session in clear: refused.
    """
    if not settings.admin_cookie_secure:
        return False, None
    base = urlsplit(settings.public_base_url)
    if base.scheme == "https":
        return True, None
    if base.scheme == "http" and is_loopback(base.hostname):
        return False, None
    return True, "browser login needs https: public_base_url is plain http on a non-loopback host"


def set_cookie(response: Response, session_id: str, settings: Settings) -> None:
    secure, _ = cookie_secure(settings)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=settings.admin_session_lifetime_seconds,
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    secure, _ = cookie_secure(settings)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Strict")


def current() -> tuple[AdminSession | None, str]:
    """This request's live session (and sets g.actor, g.role), or (None, why: "no-session", "idle", ...)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 200:
        return None, "no-session"
    settings: Settings = current_app.config["HORIZON_SETTINGS"]
    db = current_app.extensions["horizon.db"]
    moment = now()
    with db.reader() as conn:
        session, reason = AdminSessionRepository(conn).live(
            session_id, moment, settings.admin_session_idle_seconds
        )
    if session is None:
        return None, reason
    if moment - session.last_seen_at >= TOUCH_EVERY:
        with db.writer() as conn:
            AdminSessionRepository(conn).touch(session.session_hash, moment)
    g.actor, g.role = session.actor, session.role
    g.admin_session, g.admin_session_id = session, session_id
    return session, "live"


def csrf_refusal() -> str | None:
    """None when this session request may proceed; else "cross-origin" or "csrf-token"."""
    if request.method in csrf.SAFE_METHODS:
        return None
    settings: Settings = current_app.config["HORIZON_SETTINGS"]
    if not csrf.same_origin(request, settings.public_base_url):
        return "cross-origin"
    if not csrf.token_matches(g.admin_session_id, csrf.presented(request)):
        return "csrf-token"
    return None


def csrf_token() -> str:
    """The synchronizer token for forms of this request's session."""
    return csrf.token_for(g.admin_session_id)


def require_admin() -> Callable[[], None]:
    """A `before_request` hook for the admin JSON APIs: an admin bearer token, or an admin session.

    An Authorization header (or no session cookie at all) takes the bearer path, unchanged.
    """
    bearer = require_role("admin")

    def check() -> None:
        if "Authorization" in request.headers or COOKIE not in request.cookies:
            bearer()
            return
        session, reason = current()
        if session is None:
            _refuse(401, "session-ended", "the admin session has ended; log in again at /admin/login", reason)
        refusal = csrf_refusal()
        if refusal == "cross-origin":
            _refuse(403, "cross-origin", "a cross-origin request cannot use the admin session", refusal)
        if refusal is not None:
            _refuse(403, "csrf-token", "a valid X-CSRF-Token header is required with the session", refusal)

    return check


def _refuse(status: int, code: str, message: str, reason: str) -> None:
    audit("auth.refused", detail={"reason": reason, "via": "session"})
    raise ApiError(status, code, message)
