"""Repository of API bearer tokens: only SHA-256 digests are stored, never the tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from integration.store.admin_sessions import AdminSessionRepository
from integration.store.schema import api_token

ROLES = ("clinic", "admin")
TOKEN_PREFIX = "hz_"  # noqa: S105 - a public prefix that makes leaked tokens greppable


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """Who a presented token belongs to."""

    name: str
    role: str


class DuplicateTokenName(ValueError):
    """A live or revoked token already uses that name."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def create(self, name: str, role: str) -> str:
        """Store a new token's digest and return the token itself (shown once, never again)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        exists = self._conn.execute(select(api_token.c.pk).where(api_token.c.name == name)).first()
        if exists:
            raise DuplicateTokenName(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._conn.execute(
            insert(api_token).values(
                name=name, role=role, token_hash=digest(token), created_at=datetime.now(UTC)
            )
        )
        return token

    def revoke(self, name: str) -> bool:
        """Revoke the named token and its admin browser sessions; False when no live token has that name."""
        now = datetime.now(UTC)
        result = self._conn.execute(
            update(api_token)
            .where(api_token.c.name == name, api_token.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        AdminSessionRepository(self._conn).revoke_for_token(name, now)
        return result.rowcount == 1

    def verify(self, token: str) -> TokenOwner | None:
        """The owner of a live token, or None. The digest is compared in constant time."""
        presented = digest(token)
        row = self._conn.execute(
            select(api_token.c.name, api_token.c.role, api_token.c.token_hash).where(
                api_token.c.token_hash == presented, api_token.c.revoked_at.is_(None)
            )
        ).first()
        if row is None or not hmac.compare_digest(row.token_hash, presented):
            return None
        return TokenOwner(row.name, row.role)

    def list(self) -> list[dict[str, object]]:
        rows = self._conn.execute(
            select(
                api_token.c.name, api_token.c.role, api_token.c.created_at, api_token.c.revoked_at
            ).order_by(api_token.c.name)
        )
        return [dict(row._mapping) for row in rows]
