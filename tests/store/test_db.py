"""Engine settings each backend needs."""

import pytest

from integration.store.db import make_engine


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
