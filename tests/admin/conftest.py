"""An app whose destinations file points at a real receiver on 127.0.0.1, with an admin token."""

from __future__ import annotations

import time

import pytest

from integration.app import create_app
from integration.settings import Settings
from integration.store.tokens import TokenRepository
from tests.sync.receiver import Receiver

TOML = """
[[destination]]
name = "test-ehr"
kind = "ehr"
base_url = "{url}"
write_mode = "transaction"
batch_size = {batch_size}
[destination.auth]
type = "none"
[destination.schedule]
every_seconds = 600
[destination.retry]
base_seconds = 0.05
max_seconds = 0.1
"""


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def batch_size():
    return 50


@pytest.fixture
def app(database_url, tmp_path, receiver, batch_size):
    path = tmp_path / "destinations.toml"
    path.write_text(TOML.format(url=receiver.url, batch_size=batch_size))
    settings = Settings.load(
        environ={},
        database_url=database_url,
        log_level="WARNING",
        db_pool_size=4,
        destinations_file=str(path),
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["horizon.db"].engine.dispose()


@pytest.fixture
def admin(db):
    with db.writer() as conn:
        token = TokenRepository(conn).create("clinic-admin", "admin")
    return {"Authorization": f"Bearer {token}"}


def wait_for_run(client, admin, run_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/admin/api/syncs/{run_id}", headers=admin).json
        if run["state"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


@pytest.fixture
def two_destinations(app, tmp_path, receiver, batch_size):
    """The app's file with a second EHR destination (same receiver), loaded as the app loads it."""
    from integration.sync import service
    from integration.sync.destinations import load

    path = tmp_path / "two.toml"
    path.write_text(
        TOML.format(url=receiver.url, batch_size=batch_size)
        + TOML.format(url=receiver.url, batch_size=batch_size).replace('"test-ehr"', '"other-ehr"')
    )
    app.extensions[service.EXTENSION] = {d.name: d for d in load(path)}
    return app
