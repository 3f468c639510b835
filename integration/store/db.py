"""Engine creation with the durability settings each backend needs.

`hide_parameters` keeps record values (PHI) out of every SQL error message and log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

# Connections opened with this execution option start their transaction with BEGIN IMMEDIATE on
# SQLite, so a writer takes the write lock up front instead of failing to upgrade a read lock later.
WRITE = {"sqlite_write": True}
# Connections opened with this option run each statement as its own transaction (see Database.autocommit).
_SQLITE_AUTOCOMMIT = {"sqlite_autocommit": True}
# PostgreSQL advisory lock key of serialized writers ("Horizon" in ASCII).
SERIALIZED_WRITES_LOCK = 0x486F72697A6F6E


def make_engine(url: str, *, pool_size: int = 10, connect_args: dict[str, Any] | None = None) -> Engine:
    """Create the engine; on SQLite: WAL, synchronous=FULL, foreign keys on, and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    # psycopg prepares a statement after 5 runs, and PostgreSQL then switches to a generic plan
    # that ignores the values: for searches (e.g. a patient's vital signs) that plan scans the
    # index tables, 50-100x slower. Every statement is planned with its values instead.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"prepare_threshold": None, **(connect_args or {})},
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_engine(url: str, database: str | None) -> Engine:
    engine = create_engine(
        url, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False}
    )

    @event.listens_for(engine, "do_connect")
    def _make_directory(*_args: Any) -> None:
        # On first connect, not at engine creation: creating the app must not touch the disk.
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own is lazy and wrong).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("sqlite_autocommit", False):
            return  # no BEGIN: pysqlite (isolation_level None) then commits each statement itself
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_write", False) else "BEGIN")

    return engine


class Database:
    """The engine plus the two ways the service uses it: short reads and write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        options = _SQLITE_AUTOCOMMIT if is_sqlite(engine) else {"isolation_level": "AUTOCOMMIT"}
        self._autocommit = engine.execution_options(**options)

    def reader(self) -> AbstractContextManager[Connection]:
        """A connection in a (deferred) transaction, for reads."""
        return self.engine.begin()

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which every statement is its own transaction, committed as it ends.

        For the hot paths of one request: reads whose statements need not share a snapshot (on
        PostgreSQL READ COMMITTED gives each statement its own anyway) and single-statement writes,
        e.g. an audit row, which commit as durably as any transaction (SQLite synchronous=FULL,
        PostgreSQL's normal commit). It saves BEGIN and COMMIT: two round trips on PostgreSQL.
        Never use it for several writes that must succeed or fail together.
        """
        with self._autocommit.connect() as conn:  # opened on entry, as reader() and writer() are
            yield conn

    def writer(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        return self.engine.execution_options(**WRITE).begin()

    @contextmanager
    def serialized_writer(self) -> Iterator[Connection]:
        """A write transaction that runs alone among serialized writers, until it commits.

        Intake computes version numbers from what it reads and appends to the change feed, so its
        transactions must not interleave: then versions never collide and change-feed sequence
        numbers become visible in commit order. SQLite's BEGIN IMMEDIATE already gives this; on
        PostgreSQL a transaction-scoped advisory lock does.
        """
        with self.writer() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SERIALIZED_WRITES_LOCK})")
            yield conn
