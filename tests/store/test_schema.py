from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from integration.store import migrate
from integration.store.db import make_engine
from integration.store.schema import metadata


def test_migrations_build_exactly_the_declared_schema(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == []


def test_migrations_are_at_head(database_url):
    engine = make_engine(database_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert {t.name for t in metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_sqlite_is_durable(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/sub/dir/x.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_search_strings_sort_bytewise_whatever_the_database_collation(database_url):
    # Starts-with search scans [v, v + U+10FFFF): only byte order makes that range exact.
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        column = next(c for c in inspect(engine).get_columns("fhir_search_string") if c["name"] == "value")
        assert column["type"].collation == "C"
    engine.dispose()
