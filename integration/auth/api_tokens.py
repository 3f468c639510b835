"""Bearer-token check for the clinic and admin APIs, run before any request body is read."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g, request

from integration.audit import audit
from integration.auth.unavailable import DATABASE_UNAVAILABLE, refuse_unavailable
from integration.http_errors import ApiError
from integration.store.tokens import TokenRepository

_CHALLENGE = 'Bearer realm="horizon"'


def require_role(*roles: str) -> Callable[[], None]:
    """A `before_request` hook admitting only live tokens of the given roles."""

    def check() -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            _refuse(401, "missing-token", "an Authorization: Bearer token is required", _CHALLENGE)
        try:
            with current_app.extensions["horizon.db"].reader() as conn:
                owner = TokenRepository(conn).verify(token)
        except DATABASE_UNAVAILABLE as exc:
            refuse_unavailable("auth.refused", exc)
        if owner is None:
            _refuse(
                401,
                "invalid-token",
                "the bearer token is unknown or revoked",
                f'{_CHALLENGE}, error="invalid_token"',
            )
        g.actor = owner.name
        g.role = owner.role
        if owner.role not in roles:
            _refuse(403, "forbidden", f"this endpoint needs role {' or '.join(roles)}")

    return check


def _refuse(status: int, code: str, message: str, challenge: str | None = None) -> None:
    audit("auth.refused", detail={"reason": code})
    headers = {"WWW-Authenticate": challenge} if challenge else None
    raise ApiError(status, code, message, headers)
