"""Scheduler jobs per destination: only enabled EHR destinations, explicit APScheduler options, real runs;
two schedulers at once still deliver each write once."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import select

from integration.app import create_app
from integration.jobs import jobs_for
from integration.scheduler import SchedulerService
from integration.settings import Settings
from integration.store.schema import sync_run
from integration.sync.jobs import sync_jobs
from tests.sync.conftest import assert_mirrors, load

TOML = """
[[destination]]
name = "test-ehr"
kind = "ehr"
base_url = "{url}"
write_mode = "batch"
[destination.auth]
type = "none"
[destination.schedule]
every_seconds = 30

[[destination]]
name = "off-ehr"
kind = "ehr"
base_url = "{url}"
enabled = false
[destination.auth]
type = "none"
[destination.schedule]
cron = "0 * * * *"

[[destination]]
name = "referrer-north"
kind = "referrer"
practitioner = "prac-0003"
channel = "fhir"
url = "https://referrer.example.org/fhir"
triggers = ["session-completed"]
[destination.auth]
type = "none"
"""


@pytest.fixture
def sync_app(database_url, tmp_path, receiver):
    path = tmp_path / "destinations.toml"
    path.write_text(TOML.format(url=receiver.url))
    settings = Settings.load(
        environ={},
        database_url=database_url,
        log_level="WARNING",
        db_pool_size=4,
        destinations_file=str(path),
        scheduler_lease_seconds=1,
    )
    app = create_app(settings)
    yield app
    app.extensions["horizon.db"].engine.dispose()


def test_one_job_per_enabled_ehr_destination_with_explicit_options(sync_app):
    specs = sync_jobs(sync_app)
    assert [s.id for s in specs] == ["sync:test-ehr"]
    assert specs[0].trigger == "interval"
    assert specs[0].trigger_args == {
        "seconds": 30,
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": 300,
    }
    assert "sync:test-ehr" in {s.id for s in jobs_for(sync_app)}
    assert [t["name"] for t in sync_app.extensions["horizon.referrer_tables"]] == ["referrer-north"]


def test_the_job_runs_a_sync_and_reports(sync_app, receiver):
    db = sync_app.extensions["horizon.db"]
    load(db, sync_app.extensions["horizon.mapping"], patients=1)
    report = sync_jobs(sync_app)[0].func(sync_app)
    assert report["state"] == "done" and report["counts"]["sent"] > 0
    assert_mirrors(receiver, db)


def test_two_schedulers_deliver_each_write_once(sync_app, receiver):
    db = sync_app.extensions["horizon.db"]
    load(db, sync_app.extensions["horizon.mapping"], patients=2)
    (spec,) = sync_jobs(sync_app)
    fast = [replace(spec, trigger_args={**spec.trigger_args, "seconds": 0.2})]
    sync_app.config["HORIZON_SETTINGS"] = replace(
        sync_app.config["HORIZON_SETTINGS"], scheduler_lease_seconds=8
    )  # long enough that CI load never delays a renewal past it (failover is tests/test_scheduler.py's)
    a, b = SchedulerService(sync_app, jobs=fast), SchedulerService(sync_app, jobs=list(fast))
    a.start()
    b.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (a.runs.get(spec.id, 0) + b.runs.get(spec.id, 0)) < 3:
            time.sleep(0.1)
    finally:
        a.stop()
        b.stop()
    assert (a.runs.get(spec.id, 0) == 0) or (b.runs.get(spec.id, 0) == 0)  # one leader ran them all
    assert max(Counter(receiver.writes).values()) == 1
    assert_mirrors(receiver, db)
    with db.reader() as conn:
        states = conn.execute(select(sync_run.c.state)).scalars().all()
    assert len(states) >= 3 and set(states) == {"done"}
