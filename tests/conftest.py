"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when TEST_DATABASE_URL is set),
the app, clients, tokens and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from waitress import create_server, wasyncore

from integration.app import create_app
from integration.settings import Settings
from integration.store import migrate
from integration.store.db import make_engine
from integration.store.schema import metadata
from integration.store.tokens import TokenRepository

PG_SCHEMA = os.environ.get("TEST_PG_SCHEMA", "horizon_test")  # separate schemas let runs overlap
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def _pg_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "horizon.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_migrated() -> str:
    url = _pg_url()
    if url is None:
        pytest.skip("PostgreSQL run skipped: TEST_DATABASE_URL is not set")
    admin = create_engine(os.environ["TEST_DATABASE_URL"])
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "horizon.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("_pg_migrated")
    engine = make_engine(url)
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings.load(environ={}, database_url=database_url, log_level="WARNING", db_pool_size=4)


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["horizon.db"].engine.dispose()


@pytest.fixture
def db(app):
    return app.extensions["horizon.db"]


@pytest.fixture
def ctx(app):
    """The mapping context the app was configured with."""
    return app.extensions["horizon.mapping"]


@pytest.fixture
def client(app):
    return app.test_client()


def _token(db, role: str, name: str) -> str:
    with db.writer() as conn:
        return TokenRepository(conn).create(name, role)


@pytest.fixture
def clinic_token(db) -> str:
    return _token(db, "clinic", "charting-system")


@pytest.fixture
def admin_token(db) -> str:
    return _token(db, "admin", "clinic-admin")


@pytest.fixture
def clinic_headers(clinic_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {clinic_token}"}


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app on a real waitress server on 127.0.0.1 (ephemeral port); yields its base URL."""
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    stopping = threading.Event()

    def serve() -> None:
        # Stopped from inside its own thread: closing the sockets from the test's thread raced with
        # the select() of the loop and with request threads waking it (EBADF in waitress).
        while not stopping.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stopping.set()
    thread.join(timeout=10)
