"""The FHIR resource repository: versions, history, change feed, planner statistics."""

import time
from datetime import UTC, datetime

from integration.store.resources import ResourceRepository, ResourceWrite

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


def _write(db, version, n=1, content="{}"):
    writes = [
        ResourceWrite("Observation", f"obs-{i}", version, f"h{version}", content, "p1") for i in range(n)
    ]
    with db.writer() as conn:
        ResourceRepository(conn).write(writes, now=NOW)


def test_versions_history_and_feed(db):
    _write(db, 1)
    _write(db, 2, content='{"v": 2}')
    with db.writer() as conn:
        ResourceRepository(conn).write([ResourceWrite("Observation", "obs-0", 3, "h2", None, "p1")], now=NOW)
    with db.reader() as conn:
        repo = ResourceRepository(conn)
        current = repo.read("Observation", "obs-0")
        assert current.version_id == 3 and current.deleted and current.content is None
        assert repo.read("Observation", "obs-0", 2).content == '{"v": 2}'
        assert [v.version_id for v in repo.history("Observation", "obs-0")] == [1, 2, 3]
        feed = repo.changes_since(0)
        assert [(row["version_id"], row["deleted"]) for row in feed] == [(1, False), (2, False), (3, True)]
        assert repo.changes_since(feed[-1]["seq"]) == []
        assert repo.states([("Observation", "obs-0"), ("Observation", "nope")])[
            ("Observation", "obs-0")
        ].deleted


def test_statistics_are_refreshed_when_far_behind(db):
    if db.engine.dialect.name != "postgresql":
        with db.writer() as conn:
            assert ResourceRepository(conn).refresh_statistics() == []
        return
    # Autovacuum's own ANALYZE (likely on a busy machine) would leave nothing for us to refresh.
    with db.writer() as conn:
        conn.exec_driver_sql("ALTER TABLE fhir_resource SET (autovacuum_enabled = false)")
    try:
        # TRUNCATE between tests keeps the change counts of earlier tests' writes: start even.
        with db.writer() as conn:
            for table in ("fhir_resource", "fhir_resource_version", "fhir_resource_source"):
                conn.exec_driver_sql(f"ANALYZE {table}")
        with db.writer() as conn:
            assert ResourceRepository(conn).refresh_statistics() == []
        _check_refresh(db)
    finally:
        with db.writer() as conn:
            conn.exec_driver_sql("ALTER TABLE fhir_resource RESET (autovacuum_enabled)")


def _check_refresh(db) -> None:
    _write(db, 1, n=1500)
    # PostgreSQL publishes table statistics shortly after transaction end; give it a moment.
    deadline = time.monotonic() + 20
    refreshed: list[str] = []
    while not refreshed and time.monotonic() < deadline:
        with db.writer() as conn:
            refreshed = ResourceRepository(conn).refresh_statistics()
        time.sleep(0.1)
    assert "fhir_resource" in refreshed
    with db.writer() as conn:
        assert "fhir_resource" not in ResourceRepository(conn).refresh_statistics()
