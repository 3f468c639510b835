"""Admin session repository on both databases: bound to a live admin token, timeouts, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from integration.store.admin_sessions import AdminSessionRepository, LoginFailures, session_hash
from integration.store.schema import admin_login_failure, admin_session
from integration.store.tokens import TokenRepository, digest

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def _tokens(db):
    with db.writer() as conn:
        repo = TokenRepository(conn)
        return repo.create("ann", "admin"), repo.create("charting", "clinic")


def test_only_a_live_admin_token_opens_a_session(db):
    admin, clinic = _tokens(db)
    with db.writer() as conn:
        repo = AdminSessionRepository(conn)
        assert repo.create(digest(clinic), T0, 3600) is None
        assert repo.create(digest("hz_unknown"), T0, 3600) is None
        session_id, session = repo.create(digest(admin), T0, 3600)
    assert session.actor == "ann" and session.expires_at == T0 + timedelta(hours=1)
    assert session.session_hash == session_hash(session_id) != session_id
    with db.writer() as conn:
        TokenRepository(conn).revoke("ann")
        assert AdminSessionRepository(conn).create(digest(admin), T0, 3600) is None


def test_live_says_why_a_session_is_not(db):
    admin, _ = _tokens(db)
    with db.writer() as conn:
        repo = AdminSessionRepository(conn)
        sid, _ = repo.create(digest(admin), T0, 3600)
        other, _ = repo.create(digest(admin), T0, 3600)
    with db.writer() as conn:
        repo = AdminSessionRepository(conn)
        assert repo.live(sid, T0 + timedelta(seconds=899), 900)[1] == "live"
        assert repo.live(sid, T0 + timedelta(seconds=900), 900) == (None, "idle")
        repo.touch(session_hash(sid), T0 + timedelta(seconds=800))
        assert repo.live(sid, T0 + timedelta(seconds=1600), 900)[1] == "live"
        assert repo.live(sid, T0 + timedelta(seconds=3600), 90000) == (None, "expired")
        assert repo.live("nope", T0, 900) == (None, "unknown")
        assert repo.revoke(session_hash(sid), T0) and not repo.revoke(session_hash(sid), T0)
        assert repo.live(sid, T0, 900) == (None, "revoked")
    with db.writer() as conn:
        TokenRepository(conn).revoke("ann")  # revokes the token's other session too
        assert AdminSessionRepository(conn).live(other, T0, 900) == (None, "revoked")


def test_purge_deletes_ended_sessions_only(db):
    admin, _ = _tokens(db)
    with db.writer() as conn:
        repo = AdminSessionRepository(conn)
        repo.create(digest(admin), T0, 60)
        repo.create(digest(admin), T0, 7200)
        assert repo.purge(T0 + timedelta(hours=1)) == 1
        assert len(conn.execute(select(admin_session)).all()) == 1


def test_login_failures_count_per_address_within_the_window(db):
    with db.writer() as conn:
        failures = LoginFailures(conn)
        for minutes in (0, 5, 10):
            failures.record("10.1.1.1", T0 + timedelta(minutes=minutes), T0 - timedelta(hours=1))
        failures.record("10.2.2.2", T0, T0 - timedelta(hours=1))
        assert failures.count("10.1.1.1", T0 + timedelta(minutes=1)) == 2
        assert failures.oldest("10.1.1.1", T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=5)
        assert failures.count("10.2.2.2", T0) == 1
        failures.record("10.3.3.3", T0 + timedelta(hours=2), T0 + timedelta(hours=1))  # forgets older rows
        assert len(conn.execute(select(admin_login_failure)).all()) == 1
