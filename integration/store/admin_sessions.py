"""Repository of admin browser sessions: only the SHA-256 of a session id is stored, never the id.

A session is bound to the admin API token that logged in: `live` joins `api_token` and admits the
session only while that token is unrevoked, so revoking a token ends its sessions at the next request
even if nothing else happened. Timeouts are judged here against the caller's clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, update

from integration.store.schema import admin_login_failure, admin_session, api_token


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A live session: whose it is and when it started, was last used and ends at the latest."""

    session_hash: str
    actor: str
    role: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class AdminSessionRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def create(
        self, token_hash: str, now: datetime, lifetime_seconds: int
    ) -> tuple[str, AdminSession] | None:
        """A new session for the live admin token with this digest: (session id, session), or None.

        The id is 256 random bits, returned once for the cookie; a fresh one at every login, so a
        session id planted before login is never the one that gets authenticated.
        """
        t = api_token.c
        owner = self._conn.execute(
            select(t.pk, t.name, t.role, t.token_hash).where(
                t.token_hash == token_hash, t.revoked_at.is_(None), t.role == "admin"
            )
        ).first()
        if owner is None or not hmac.compare_digest(owner.token_hash, token_hash):
            return None
        session_id = secrets.token_urlsafe(32)
        row = AdminSession(
            session_hash(session_id),
            owner.name,
            owner.role,
            now,
            now,
            now + timedelta(seconds=lifetime_seconds),
        )
        self._conn.execute(
            insert(admin_session).values(
                session_hash=row.session_hash,
                token_pk=owner.pk,
                actor=row.actor,
                role=row.role,
                created_at=now,
                last_seen_at=now,
                expires_at=row.expires_at,
            )
        )
        return session_id, row

    def live(self, session_id: str, now: datetime, idle_seconds: int) -> tuple[AdminSession | None, str]:
        """(the session, "live"), or (None, why not): unknown, revoked, token-revoked, expired, idle."""
        presented = session_hash(session_id)
        s, t = admin_session.c, api_token.c
        row = self._conn.execute(
            select(
                s.session_hash,
                s.actor,
                s.role,
                s.created_at,
                s.last_seen_at,
                s.expires_at,
                s.revoked_at,
                t.revoked_at.label("token_revoked_at"),
            )
            .join(api_token, t.pk == s.token_pk)
            .where(s.session_hash == presented)
        ).first()
        if row is None or not hmac.compare_digest(row.session_hash, presented):
            return None, "unknown"
        if row.revoked_at is not None:
            return None, "revoked"
        if row.token_revoked_at is not None:
            return None, "token-revoked"
        if now >= row.expires_at:
            return None, "expired"
        if now >= row.last_seen_at + timedelta(seconds=idle_seconds):
            return None, "idle"
        session = AdminSession(
            row.session_hash, row.actor, row.role, row.created_at, row.last_seen_at, row.expires_at
        )
        return session, "live"

    def touch(self, hashed: str, now: datetime) -> None:
        self._conn.execute(
            update(admin_session).where(admin_session.c.session_hash == hashed).values(last_seen_at=now)
        )

    def revoke(self, hashed: str, now: datetime) -> bool:
        result = self._conn.execute(
            update(admin_session)
            .where(admin_session.c.session_hash == hashed, admin_session.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1

    def revoke_for_token(self, token_name: str, now: datetime) -> int:
        """Revoke every open session of the named token (called when the token is revoked)."""
        pks = select(api_token.c.pk).where(api_token.c.name == token_name).scalar_subquery()
        result = self._conn.execute(
            update(admin_session)
            .where(admin_session.c.token_pk == pks, admin_session.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount

    def purge(self, before: datetime) -> int:
        """Delete sessions that ended (expired) before `before`; logins and logouts stay in the audit log."""
        result = self._conn.execute(delete(admin_session).where(admin_session.c.expires_at < before))
        return result.rowcount


class LoginFailures:
    """Failed browser logins per client address within a window (the login rate limit)."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def count(self, remote_addr: str, since: datetime) -> int:
        t = admin_login_failure.c
        query = select(func.count()).where(t.remote_addr == remote_addr, t.failed_at >= since)
        return int(self._conn.execute(query).scalar() or 0)

    def oldest(self, remote_addr: str, since: datetime) -> datetime | None:
        t = admin_login_failure.c
        query = select(func.min(t.failed_at)).where(t.remote_addr == remote_addr, t.failed_at >= since)
        return self._conn.execute(query).scalar()

    def record(self, remote_addr: str, now: datetime, forget_before: datetime) -> None:
        """Count one failure; failures older than the window are deleted on the way."""
        self._conn.execute(delete(admin_login_failure).where(admin_login_failure.c.failed_at < forget_before))
        self._conn.execute(insert(admin_login_failure).values(remote_addr=remote_addr[:64], failed_at=now))
