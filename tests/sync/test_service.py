"""Sync runs: one running run per destination even when started at once; stale runs are abandoned;
a bad destinations file stops the app with an error naming destination and field."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from integration.app import create_app
from integration.settings import Settings
from integration.sync import service
from integration.sync.destinations import DestinationConfigError
from integration.sync.runs import RunRepository
from tests.sync.conftest import make_destination


def test_concurrent_starts_make_one_run(db, settings):
    destination = make_destination("http://127.0.0.1:9/fhir")
    results: list[tuple[dict, bool]] = []
    barrier = threading.Barrier(4)

    def start():
        barrier.wait()
        results.append(service.start(db, settings, destination, {}, "test"))

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


def test_the_stale_run_bound_is_the_setting_but_never_below_twice_the_lane_lease(db, settings):
    """A run is dead after `sync_stale_run_seconds` without a heartbeat, unless the destination's lane lease
    is long: a live run heartbeats once per batch, and a batch may take a whole lease."""
    quick = make_destination("http://127.0.0.1:9/fhir", timeouts={"connect_seconds": 1, "read_seconds": 2})
    assert quick.lease_seconds == 1 + 2 * 2 + 30
    assert quick.stale_run_seconds(300) == 300
    slow = make_destination("http://127.0.0.1:9/fhir", timeouts={"read_seconds": 200, "lease_seconds": 600})
    assert slow.lease_seconds == 600 and slow.stale_run_seconds(300) == 1200

    quiet_for = datetime.now(UTC) - timedelta(seconds=90)
    with db.writer() as conn:
        old, _ = RunRepository(conn).start("test-ehr", {}, "test", quiet_for, 3600)
    # 90 s without a heartbeat: alive under a 120 s setting, and under 60 s for the slow destination
    for setting, destination in ((120, quick), (60, slow)):
        run, created = service.start(
            db, replace(settings, sync_stale_run_seconds=setting), destination, {}, "t"
        )
        assert not created and run["run_id"] == old["run_id"]
    # ... dead under 60 s for the quick one (max(60, 2 x 35) = 70 s): abandoned, a new run starts
    run, created = service.start(db, replace(settings, sync_stale_run_seconds=60), quick, {}, "test")
    assert created and run["run_id"] != old["run_id"]
    with db.reader() as conn:
        assert RunRepository(conn).get(old["run_id"])["state"] == "abandoned"


def test_a_lane_lease_shorter_than_one_exchange_is_refused():
    with pytest.raises(DestinationConfigError, match=r"timeouts.lease_seconds.*at least .*\(65\)"):
        make_destination(
            "http://127.0.0.1:9/fhir",
            timeouts={"connect_seconds": 5, "read_seconds": 30, "lease_seconds": 60},
        )
