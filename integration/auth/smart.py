"""SMART Backend Services, so hospital EHRs can authorize: discovery, token endpoint, per-request scopes.

SMART App Launch 2.x "Backend Services" with RFC 7523 private_key_jwt client authentication. Every
token issued or refused writes an audit row (`smart.token`); assertions and tokens are never logged.
The FHIR API calls `require_scope(resource_type, interaction)` on every request.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import Connection

from integration.audit import audit, mark_written
from integration.auth.smart_assertion import ASSERTION_TYPE, TokenRefusal, verify_assertion
from integration.auth.smart_clients import Grant, ReplayedAssertion, SmartClient, SmartClientRepository
from integration.auth.smart_keys import (
    ALGORITHMS,
    JwksCache,
    Keys,
    check_jwks_url,
    parse_allowlist,
    stored_keys,
)
from integration.auth.smart_rate_limit import TokenRateLimits
from integration.auth.smart_scopes import format_scopes, intersect, parse_scopes
from integration.auth.unavailable import DATABASE_UNAVAILABLE, refuse_unavailable
from integration.http_errors import ApiError
from integration.settings import Settings
from integration.store.audit import AuditEntry, AuditRepository

log = logging.getLogger(__name__)
bp = Blueprint("smart", __name__)

TOKEN_PATH = "/auth/token"  # noqa: S105 - a URL path, not a secret
MAX_TOKEN_LIFETIME_SECONDS = 300
MAX_ASSERTION_CHARS = 16 * 1024
MAX_SCOPE_CHARS = 4096
_REALM = 'Bearer realm="horizon"'
_JWKS_CACHE = "horizon.smart_jwks"


class SmartAuthError(ApiError):
    """A FHIR request refused for its token (401) or scope (403); the FHIR API may render it its own way."""


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    settings: Settings = state.app.config["HORIZON_SETTINGS"]
    state.app.extensions[_JWKS_CACHE] = JwksCache(settings.smart_jwks_cache_seconds)


def token_url(settings: Settings) -> str:
    """The token endpoint's URL from configuration: what client assertions must name as aud."""
    return settings.public_base_url.rstrip("/") + TOKEN_PATH


@bp.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART App Launch 2.x section "Conformance": what a backend client needs to discover."""
    return jsonify(
        {
            "token_endpoint": token_url(_settings()),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": ["system/*.rs", "system/*.r", "system/*.s", "system/*.read"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
        }
    )


@bp.post(TOKEN_PATH)
def token() -> Response:
    g.actor = None
    entry = audit("smart.token", detail={"reason": "unexpected_error"})
    now = time.time()
    limits = TokenRateLimits(current_app.extensions["horizon.db"], _settings(), now)
    try:
        limits.check_address(request.remote_addr)
        return _issue(entry, limits, now)
    except TokenRefusal as refusal:
        if refusal.status != 429:
            limits.count_refusal(request.remote_addr)
        g.actor = entry.actor = refusal.client_id
        entry.detail = {"reason": refusal.reason}
        body = {"error": refusal.error, "error_description": refusal.description}
        response = _no_store(jsonify(body), refusal.status)
        response.headers.update(refusal.headers)
        return response


def _issue(entry: AuditEntry, limits: TokenRateLimits, now: float) -> Response:
    form = _token_form()
    settings = _settings()
    db = current_app.extensions["horizon.db"]
    verified = verify_assertion(
        form["client_assertion"],
        token_url=token_url(settings),
        find_client=_find_client,
        keys_of=_keys_of,
        now=now,
    )
    client = verified.client
    if form.get("client_id", client.client_id) != client.client_id:
        raise TokenRefusal(
            "invalid_client", "client_id_mismatch", "client_id differs from the assertion", client.client_id
        )
    limits.count_client(client.client_id)
    if not form.get("scope", "").strip():
        raise TokenRefusal("invalid_scope", "missing_scope", "scope is required", client.client_id)
    # Scopes this server does not know (e.g. patient/, user/, launch) are simply not granted.
    requested, _ = parse_scopes(form["scope"])
    granted = intersect(requested, parse_scopes(client.scope)[0])
    if not granted:
        raise TokenRefusal(
            "invalid_scope", "scope_not_granted", "none of the requested scopes is allowed", client.client_id
        )
    scope = format_scopes(granted)
    lifetime = max(1, min(settings.smart_token_lifetime_seconds, MAX_TOKEN_LIFETIME_SECONDS))
    issued_at = datetime.fromtimestamp(now, UTC)
    try:
        with db.writer() as conn:
            repo = SmartClientRepository(conn)
            repo.remember_jti(client.client_id, verified.jti, verified.expires_at)
            access_token = repo.issue_token(
                client.client_id, scope, client.group_id, timedelta(seconds=lifetime), issued_at
            )
            # Audited in the same transaction: no token exists without its audit row.
            detail = {"reason": "issued", "scope": scope, "expires_in": lifetime}
            AuditRepository(conn).record(
                dataclasses.replace(entry, actor=client.client_id, outcome=200, detail=detail)
            )
    except ReplayedAssertion:
        raise TokenRefusal(
            "invalid_client", "replayed_jti", "this jti was already used", client.client_id
        ) from None
    mark_written()
    g.actor = client.client_id
    _purge_expired(client.client_id, issued_at)
    body = {"access_token": access_token, "token_type": "bearer", "expires_in": lifetime, "scope": scope}
    return _no_store(jsonify(body), 200)


def _token_form() -> dict[str, str]:
    """The token request's parameters (RFC 6749 section 4.4.2, RFC 7521 section 4.2), each given once."""
    if request.args:
        raise TokenRefusal("invalid_request", "query_parameters", "send parameters in the form body only")
    if request.mimetype != "application/x-www-form-urlencoded":
        raise TokenRefusal(
            "invalid_request", "bad_content_type", "use Content-Type application/x-www-form-urlencoded"
        )
    form = request.form
    if any(len(form.getlist(name)) > 1 for name in form):
        raise TokenRefusal("invalid_request", "duplicate_parameter", "a parameter was given more than once")
    grant_type = form.get("grant_type", "")
    if not grant_type:
        raise TokenRefusal("invalid_request", "missing_grant_type", "grant_type is required")
    if grant_type != "client_credentials":
        raise TokenRefusal(
            "unsupported_grant_type", "bad_grant_type", "only grant_type client_credentials is supported"
        )
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise TokenRefusal(
            "invalid_request", "bad_assertion_type", f"client_assertion_type must be {ASSERTION_TYPE}"
        )
    assertion = form.get("client_assertion", "")
    if not assertion:
        raise TokenRefusal("invalid_request", "missing_assertion", "client_assertion is required")
    if len(assertion) > MAX_ASSERTION_CHARS:
        raise TokenRefusal("invalid_request", "assertion_too_long", "client_assertion is too long")
    if len(form.get("scope", "")) > MAX_SCOPE_CHARS:
        raise TokenRefusal("invalid_request", "scope_too_long", "scope is too long")
    return {name: form[name] for name in form}


def _find_client(client_id: str) -> SmartClient | None:
    with current_app.extensions["horizon.db"].reader() as conn:
        return SmartClientRepository(conn).get(client_id)


def _keys_of(client: SmartClient, kid: str) -> Keys:
    if client.jwks is not None:
        return stored_keys(client.jwks)
    url = client.jwks_url or ""
    # Checked again on every use: taking a prefix off the allow-list disables its clients at once.
    check_jwks_url(url, parse_allowlist(_settings().smart_jwks_url_allowlist))
    return current_app.extensions[_JWKS_CACHE].keys(url, kid)


def _purge_expired(client_id: str, now: datetime) -> None:
    """Drop this client's expired jti records and tokens; housekeeping only, so failures are logged."""
    try:
        with current_app.extensions["horizon.db"].writer() as conn:
            SmartClientRepository(conn).purge_expired(now, client_id)
    except Exception:
        log.warning("purging expired SMART jti records and tokens failed", exc_info=True)


def _no_store(response: Response, status: int) -> Response:
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _settings() -> Settings:
    return current_app.config["HORIZON_SETTINGS"]


@contextmanager
def checking_connection(opening: AbstractContextManager[Connection]) -> Iterator[Connection]:
    """The connection a handler opens to check the token on and then read: a database that cannot
    be reached is refused as the token check itself would be (503, Retry-After), never a 500."""
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(opening)
        except DATABASE_UNAVAILABLE as exc:
            refuse_unavailable("smart.refused", exc, SmartAuthError)
        yield conn


def require_scope(resource_type: str, interaction: str, conn: Connection | None = None) -> Grant:
    """The grant of this request's bearer token if it allows `interaction` on `resource_type`.

    Raises SmartAuthError: 401 for a missing, unknown, expired or revoked token (RFC 6750 section 3),
    403 when the token's scopes do not cover the interaction, 503 (Retry-After) when the database
    cannot be asked. Interactions: read, vread, search,
    history-instance, history-type, create, update, delete (or a permission letter of `cruds`).
    A handler that already holds a read transaction passes it, saving a transaction per request.
    """
    grant = current_grant(conn)
    if not grant.allows(resource_type, interaction):
        _refuse(
            403,
            "insufficient-scope",
            f"the token's scopes do not allow {interaction} on {resource_type}",
            f'{_REALM}, error="insufficient_scope"',
        )
    return grant


def current_grant(conn: Connection | None = None) -> Grant:
    """The grant of this request's bearer token, scopes not yet checked (401 when there is none)."""
    grant: Grant | None = g.get("smart_grant")
    if grant is None:
        grant = _authenticate(conn)
        g.smart_grant = grant
        g.actor = grant.client_id
        g.role = "smart-client"
    return grant


def _authenticate(conn: Connection | None) -> Grant:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        # RFC 6750 section 3.1: no error code when the request carried no credentials at all.
        _refuse(401, "missing-token", "an Authorization: Bearer token is required", _REALM)
    # Looked up on every request, never cached in the process: a client revoked by `smart_cli`
    # (another process, no signal reaches the workers) must be refused on its very next request.
    # The lookup is one indexed statement on the connection the handler reads with.
    try:
        if conn is not None:
            grant = SmartClientRepository(conn).grant_for(presented, datetime.now(UTC))
        else:
            with current_app.extensions["horizon.db"].reader() as own:
                grant = SmartClientRepository(own).grant_for(presented, datetime.now(UTC))
    except DATABASE_UNAVAILABLE as exc:
        refuse_unavailable("smart.refused", exc, SmartAuthError)
    if grant is None:
        _refuse(
            401,
            "invalid-token",
            "the access token is unknown, expired or revoked",
            f'{_REALM}, error="invalid_token", error_description="unknown, expired or revoked token"',
        )
    return grant


def _refuse(status: int, code: str, message: str, challenge: str) -> NoReturn:
    audit("smart.refused", detail={"reason": code})
    raise SmartAuthError(status, code, message, {"WWW-Authenticate": challenge})
