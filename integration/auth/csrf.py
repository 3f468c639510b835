"""CSRF defence for requests authenticated by the admin session cookie (bearer requests need none).

Two checks on every state-changing request (OWASP CSRF Prevention Cheat Sheet): a synchronizer token,
derived from the session id with HMAC so nothing extra is stored and it dies with the session, sent in
the form field `csrf_token` or the header `X-CSRF-Token` and compared in constant time; and, when the
browser sends one, an `Origin` (else `Referer`) that must be this service's own origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from flask import Request

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LABEL = b"horizon-admin-csrf/v1"


def token_for(secret: str) -> str:
    """The synchronizer token of a session (or of a login form's pre-session secret)."""
    mac = hmac.new(secret.encode("utf-8"), _LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def presented(request: Request) -> str:
    """The token the request carries: the header for scripts, else the form field."""
    return request.headers.get(HEADER) or (request.form.get(FIELD, "") if request.form else "")


def token_matches(secret: str, candidate: str) -> bool:
    expected = token_for(secret).encode("ascii")
    return hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def same_origin(request: Request, public_base_url: str) -> bool:
    """False when the browser says the request comes from another origin (or an opaque one: "null").

    Our origin is the configured public base URL's, or the one the request was addressed to (a forged
    request cannot choose the Host its victim's browser sends). No Origin and no Referer: True, the
    token alone decides (some privacy settings strip both).
    """
    claimed = request.headers.get("Origin")
    if claimed is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return True
        claimed = _origin_of(referer) or "null"
    ours = {_origin_of(public_base_url), f"{request.scheme}://{request.host.lower()}"}
    return claimed.lower() in ours
