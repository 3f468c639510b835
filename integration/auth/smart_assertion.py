"""Verify a SMART client assertion (RFC 7523 section 3, SMART Backend Services), failing closed at every step.

Every refusal carries an RFC 6749 section 5.2 error code for the client and a finer reason code for the
audit log. Failures that depend on the registry (unknown or revoked client, unknown kid, bad signature)
share one description, so the answer does not tell which client ids or kids exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from integration.auth.smart_clients import SmartClient
from integration.auth.smart_keys import ALGORITHMS, JwksError, Keys, verification_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_EXP_AHEAD_SECONDS = 300  # SMART Backend Services: exp "no more than five minutes in the future"
LEEWAY_SECONDS = 15  # clock skew allowed on exp (both ways), nbf and iat
_AUTH_FAILED = "client authentication failed"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class TokenRefusal(Exception):
    """A token request refused: RFC 6749 error code, audit reason, description, client if known."""

    def __init__(
        self,
        error: str,
        reason: str,
        description: str,
        client_id: str | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.reason = reason
        self.description = description
        self.client_id = client_id
        self.status = status or (401 if error == "invalid_client" else 400)
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """A client assertion whose every check passed."""

    client: SmartClient
    jti: str
    expires_at: datetime


def _refuse(reason: str, description: str = _AUTH_FAILED, client_id: str | None = None) -> TokenRefusal:
    return TokenRefusal("invalid_client", reason, description, client_id)


def verify_assertion(
    assertion: str,
    *,
    token_url: str,
    find_client: Callable[[str], SmartClient | None],
    keys_of: Callable[[SmartClient, str], Keys],
    now: float,
) -> VerifiedAssertion:
    """Check header, issuer, key, signature and claims of `assertion`; raise TokenRefusal on any failure."""
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _refuse("malformed_assertion", "the client assertion is not a well-formed JWT") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:  # never none, never HS*: only RS384 and ES384
        raise _refuse("bad_alg", "the client assertion must be signed with RS384 or ES384")
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.upper() != "JWT" or "crit" in header:
        raise _refuse("bad_header", "the client assertion header has an unsupported typ or crit")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("missing_kid", "the client assertion header needs a kid")
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not iss or iss != sub:
        raise _refuse("iss_sub_mismatch", "iss and sub must both be the client id")

    # Registered ids are UUIDs; anything else is unknown without asking the database.
    client = find_client(iss) if _CLIENT_ID.match(iss) else None
    if client is None:
        raise _refuse("unknown_client")
    if client.revoked_at is not None:
        raise _refuse("revoked_client", client_id=client.client_id)
    try:
        key = verification_key(keys_of(client, kid), kid, alg)
    except JwksError:
        raise _refuse("jwks_unavailable", "the client's keys cannot be obtained", client.client_id) from None
    if key is None:
        raise _refuse("unknown_kid", client_id=client.client_id)

    payload = _decode(assertion, key, alg, token_url, client.client_id)
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _refuse("missing_jti", "the client assertion needs a jti", client.client_id)
    exp = payload["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise _refuse("invalid_assertion", "exp must be a number", client.client_id)
    if exp > now + MAX_EXP_AHEAD_SECONDS + LEEWAY_SECONDS:
        raise _refuse("exp_too_far", "exp may be at most five minutes ahead", client.client_id)
    # Kept until the assertion could no longer pass the exp check anyway.
    expires_at = datetime.fromtimestamp(exp + LEEWAY_SECONDS, UTC)
    return VerifiedAssertion(client, jti, expires_at)


def _decode(assertion: str, key: Any, alg: str, token_url: str, client_id: str) -> dict[str, Any]:
    try:
        return jwt.decode(
            assertion,
            key=key,
            algorithms=[alg],
            audience=token_url,
            issuer=client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "sub", "aud", "jti"]},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise _refuse(f"missing_{exc.claim}", f"the client assertion needs {exc.claim}", client_id) from None
    except jwt.ExpiredSignatureError:
        raise _refuse("expired", "the client assertion has expired", client_id) from None
    except jwt.InvalidAudienceError:
        raise _refuse("wrong_aud", "aud must be the token endpoint URL", client_id) from None
    except jwt.ImmatureSignatureError:
        raise _refuse("immature", "the client assertion is not valid yet (nbf or iat)", client_id) from None
    except jwt.InvalidSignatureError:
        raise _refuse("bad_signature", client_id=client_id) from None
    except jwt.InvalidTokenError as exc:
        raise _refuse("invalid_assertion", f"the client assertion is invalid: {exc}", client_id) from None
