"""The scheduled jobs do real work on the real database."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from integration.jobs import checkpoint_sqlite, jobs_for, purge_expired_smart_credentials
from integration.store.schema import smart_client, smart_jti


def test_purge_removes_only_expired_assertion_ids(app, db):
    now = datetime.now(UTC)
    rows = [
        {"client_id": "c1", "jti_hash": "a" * 64, "expires_at": now - timedelta(minutes=1)},
        {"client_id": "c1", "jti_hash": "b" * 64, "expires_at": now + timedelta(minutes=4)},
    ]
    client = {"client_id": "c1", "name": "ehr", "scope": "system/*.rs", "jwks": "{}", "created_at": now}
    with db.writer() as conn:
        conn.execute(insert(smart_client).values(client))
        conn.execute(insert(smart_jti), rows)
    assert purge_expired_smart_credentials(app) == {"removed": 1}
    with db.reader() as conn:
        assert conn.execute(select(func.count()).select_from(smart_jti)).scalar_one() == 1


def test_jobs_for_the_backend(app, db):
    ids = {spec.id for spec in jobs_for(app)}
    assert "smart-credentials-purge" in ids
    if db.engine.dialect.name == "sqlite":
        assert "sqlite-checkpoint" in ids
        assert set(checkpoint_sqlite(app)) == {"busy", "wal_frames", "checkpointed"}
