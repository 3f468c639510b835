"""Repository of SMART clients, their used assertion ids, and access tokens kept only as SHA-256."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from integration.auth.smart_keys import JwksError, check_jwks_url, validate_jwks
from integration.auth.smart_scopes import Scope, allows, format_scopes, parse_scopes
from integration.store.schema import smart_access_token, smart_client, smart_jti

TOKEN_PREFIX = "hzs_"  # noqa: S105 - a public prefix that makes leaked tokens greppable
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True, slots=True)
class SmartClient:
    """A registered backend client; `scope` is what it may ever be granted."""

    client_id: str
    name: str
    scope: str
    group_id: str | None
    jwks: str | None
    jwks_url: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Grant:
    """What a presented access token allows: whose it is, which scopes, which Group (if any)."""

    client_id: str
    scope: str
    scopes: tuple[Scope, ...]
    group_id: str | None
    expires_at: datetime

    def allows(self, resource_type: str, interaction: str) -> bool:
        """Whether the scopes cover `interaction` on `resource_type` (e.g. to filter `_include` results)."""
        return allows(self.scopes, resource_type, interaction)


class RegistrationError(ValueError):
    """A client cannot be registered as asked (bad scopes, keys, URL, group or duplicate name)."""


class ReplayedAssertion(Exception):
    """The client already used this jti in an assertion that is still within its lifetime."""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# Built once: this runs on every FHIR request, and building the statement costs more than running it.
_GRANT_QUERY = (
    select(
        smart_access_token.c.token_hash,
        smart_access_token.c.client_id,
        smart_access_token.c.scope,
        smart_access_token.c.group_id,
        smart_access_token.c.expires_at,
    )
    .join(smart_client, smart_client.c.client_id == smart_access_token.c.client_id)
    .where(
        smart_access_token.c.token_hash == bindparam("token_hash"),
        smart_access_token.c.expires_at > bindparam("now"),
        smart_client.c.revoked_at.is_(None),
    )
)


@functools.lru_cache(maxsize=256)
def _parsed_scopes(scope: str) -> tuple[Scope, ...]:
    """The granted scope string as parsed scopes (pure; a client's tokens share a few strings)."""
    return tuple(parse_scopes(scope)[0])


class SmartClientRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def register(
        self,
        name: str,
        scope: str,
        *,
        jwks: str | None = None,
        jwks_url: str | None = None,
        jwks_allowlist: list[str] | None = None,
        group_id: str | None = None,
    ) -> str:
        """Validate and store a new client; returns its client id. Raises RegistrationError."""
        name = name.strip()
        if not name or len(name) > 100:
            raise RegistrationError("the name must be 1 to 100 characters")
        scopes, unknown = parse_scopes(scope)
        if unknown or not scopes:
            shown = " ".join(unknown) or "(none)"
            raise RegistrationError(f"not system scopes this server supports: {shown}")
        if group_id is not None and not _FHIR_ID.match(group_id):
            raise RegistrationError("the group must be a FHIR id ([A-Za-z0-9-.], at most 64 characters)")
        if (jwks is None) == (jwks_url is None):
            raise RegistrationError("give exactly one of a JWKS file or a JWKS URL")
        try:
            if jwks is not None:
                jwks = validate_jwks(jwks)
            else:
                check_jwks_url(jwks_url or "", jwks_allowlist or [])
        except JwksError as exc:
            raise RegistrationError(str(exc)) from None
        if self._conn.execute(select(smart_client.c.client_id).where(smart_client.c.name == name)).first():
            raise RegistrationError(f"a client named {name!r} already exists")
        client_id = str(uuid.uuid4())
        self._conn.execute(
            insert(smart_client).values(
                client_id=client_id,
                name=name,
                scope=format_scopes(scopes),
                group_id=group_id,
                jwks=jwks,
                jwks_url=jwks_url,
                created_at=datetime.now(UTC),
            )
        )
        return client_id

    def get(self, client_id: str) -> SmartClient | None:
        row = self._conn.execute(select(smart_client).where(smart_client.c.client_id == client_id)).first()
        return SmartClient(**row._mapping) if row else None

    def list(self) -> list[SmartClient]:
        rows = self._conn.execute(select(smart_client).order_by(smart_client.c.name))
        return [SmartClient(**row._mapping) for row in rows]

    def revoke(self, client_id: str) -> bool:
        """Revoke a live client and drop its access tokens; False when no live client has that id."""
        result = self._conn.execute(
            update(smart_client)
            .where(smart_client.c.client_id == client_id, smart_client.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        self._conn.execute(delete(smart_access_token).where(smart_access_token.c.client_id == client_id))
        return result.rowcount == 1

    def remember_jti(self, client_id: str, jti: str, expires_at: datetime) -> None:
        """Record an assertion id; ReplayedAssertion if the client used it before (the key decides races).

        The caller's transaction must end after a ReplayedAssertion (PostgreSQL has aborted it).
        """
        try:
            self._conn.execute(
                insert(smart_jti).values(client_id=client_id, jti_hash=digest(jti), expires_at=expires_at)
            )
        except IntegrityError:
            raise ReplayedAssertion(client_id) from None

    def issue_token(
        self, client_id: str, scope: str, group_id: str | None, lifetime: timedelta, now: datetime
    ) -> str:
        """Store a new access token's digest and return the token (shown to the client once)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._conn.execute(
            insert(smart_access_token).values(
                token_hash=digest(token),
                client_id=client_id,
                scope=scope,
                group_id=group_id,
                issued_at=now,
                expires_at=now + lifetime,
            )
        )
        return token

    def grant_for(self, token: str, now: datetime) -> Grant | None:
        """The grant of an unexpired token of a live client, or None; digests compared in constant time."""
        presented = digest(token)
        row = self._conn.execute(_GRANT_QUERY, {"token_hash": presented, "now": now}).first()
        if row is None or not hmac.compare_digest(row.token_hash, presented):
            return None
        return Grant(row.client_id, row.scope, _parsed_scopes(row.scope), row.group_id, row.expires_at)

    def purge_expired(self, now: datetime, client_id: str | None = None) -> int:
        """Delete jti records and access tokens past their expiry (of one client, or of all)."""
        removed = 0
        for table in (smart_jti, smart_access_token):
            query = delete(table).where(table.c.expires_at < now)
            if client_id is not None:
                query = query.where(table.c.client_id == client_id)
            removed += self._conn.execute(query).rowcount
        return removed
