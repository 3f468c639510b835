"""Engine settings each backend needs."""

import pytest
from sqlalchemy import func, select

from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database, make_engine
from integration.store.schema import audit_event


def test_postgresql_plans_every_statement_with_its_values(database_url):
    """psycopg would prepare repeated statements, and PostgreSQL then runs searches on a generic
    plan that ignores the values (a scan of the index tables)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server-side prepared statements")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.prepare_threshold is None
            statement = "SELECT count(*) FROM fhir_resource WHERE resource_type = %(t)s"
            for _ in range(8):
                conn.exec_driver_sql(statement, {"t": "Observation"})
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one()
        assert prepared == 0
    finally:
        engine.dispose()


def _audit_rows(db) -> int:
    with db.reader() as conn:
        return conn.execute(select(func.count()).select_from(audit_event)).scalar_one()


def _row(action: str) -> AuditEntry:
    return AuditEntry(action=action, outcome=200)


def test_autocommit_commits_each_statement_as_it_runs(db):
    with pytest.raises(RuntimeError), db.autocommit() as conn:
        AuditRepository(conn).record(_row("first"))
        assert _audit_rows(db) == 1  # already visible to another connection: committed
        raise RuntimeError("a failure after the statement does not take it back")
    assert _audit_rows(db) == 1


def test_a_pooled_connection_is_transactional_again_after_autocommit(database_url):
    """Autocommit is an option of one checkout: the next writer on the same connection is atomic."""
    db = Database(make_engine(database_url, pool_size=1))
    try:
        with db.autocommit() as conn:
            AuditRepository(conn).record(_row("alone"))
        for _ in range(2):  # a pool of one: both writers reuse the connection autocommit had
            with pytest.raises(RuntimeError), db.writer() as conn:
                AuditRepository(conn).record(_row("rolled back"))
                raise RuntimeError("the transaction must take its row back")
        with db.reader() as conn:
            actions = conn.execute(select(audit_event.c.action)).scalars().all()
        assert actions == ["alone"]
    finally:
        db.engine.dispose()
