"""Sync runs: one running run per destination even when started at once; stale runs are abandoned;
a bad destinations file stops the app with an error naming destination and field."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from integration.app import create_app
from integration.settings import Settings
from integration.sync import service
from integration.sync.destinations import DestinationConfigError
from integration.sync.runs import RunRepository
from tests.sync.conftest import make_destination


def test_concurrent_starts_make_one_run(db):
    destination = make_destination("http://127.0.0.1:9/fhir")
    results: list[tuple[dict, bool]] = []
    barrier = threading.Barrier(4)

    def start():
        barrier.wait()
        results.append(service.start(db, destination, {}, "test"))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 4 and sum(created for _run, created in results) == 1
    assert len({run["run_id"] for run, _ in results}) == 1


def test_a_stale_running_run_is_abandoned_by_the_next_start(db):
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with db.writer() as conn:
        old, _ = RunRepository(conn).start("test-ehr", {}, "test", long_ago, 60)
    with db.writer() as conn:
        new, created = RunRepository(conn).start("test-ehr", {}, "test", datetime.now(UTC), 60)
        assert created and new["run_id"] != old["run_id"]
        assert RunRepository(conn).get(old["run_id"])["state"] == "abandoned"


def test_bad_destinations_file_stops_the_app(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[[destination]]\nname = "north"\nkind = "ehr"\nbase_url = "http://ehr.example.org"\n')
    with pytest.raises(DestinationConfigError, match="destination 'north', field 'base_url'"):
        create_app(Settings.load(environ={}, destinations_file=str(path), database_url="sqlite://"))
