"""Admin pull trigger (`POST /admin/api/syncs` with `"pull": true`) against a real EHR server: 202 and a
run to watch, one pull at a time per destination beside its push, audited; scheduler jobs per pull."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from integration.app import create_app
from integration.settings import Settings
from integration.store.schema import audit_event, sync_run
from integration.sync.breaker import Breaker
from integration.sync.jobs import sync_jobs
from integration.sync.state import StateRepository
from tests.admin.conftest import TOML, wait_for_run
from tests.sync.conftest import load
from tests.sync.test_pull import service_request

PULL = """
[destination.pull]
referrals = true
demographics = true
clinic_references = ["Organization/clinic-7"]
[destination.pull.schedule]
every_seconds = 300
"""


@pytest.fixture
def app(database_url, tmp_path, receiver):
    path = tmp_path / "destinations.toml"
    path.write_text(TOML.format(url=receiver.url, batch_size=50) + PULL)
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


def test_pull_trigger_watch_and_audit(client, admin, db, ctx, receiver):
    batch = load(db, ctx)
    mrn = batch["patients"][0]["id"]
    t0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
    receiver.ehr.put(
        {
            "resourceType": "Patient",
            "id": "ehr-p1",
            "identifier": [{"system": ctx.sid("patient"), "value": mrn}],
            "name": [{"family": batch["patients"][0]["family"], "given": batch["patients"][0]["given"]}],
        },
        t0,
    )
    receiver.ehr.put(
        {
            "resourceType": "Practitioner",
            "id": "dr-1",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            "name": [{"family": "Ruiz", "given": ["Ana"]}],
        },
        t0,
    )
    receiver.ehr.put(service_request("sr-1"), t0)
    response = client.post("/admin/api/syncs", json={"destination": "test-ehr", "pull": True}, headers=admin)
    assert response.status_code == 202, response.json
    run = wait_for_run(client, admin, response.json["run_id"])
    assert run["state"] == "done" and run["options"]["pull"] is True
    assert run["counts"]["stored"] == 1 and run["counts"]["unchanged"] == 1  # the referral; the patient as is
    assert run["counts"]["modes"] == {"Patient": "lastUpdated", "ServiceRequest": "lastUpdated"}
    with db.reader() as conn:
        actions = conn.execute(select(audit_event.c.action, audit_event.c.actor)).all()
    assert ("sync.pull.trigger", "clinic-admin") in actions and ("sync.pull", "clinic-admin") in actions
    push = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin)
    assert push.status_code == 202 and push.json["run_id"] != run["run_id"]  # a push is its own run
    wait_for_run(client, admin, push.json["run_id"])


def test_pull_trigger_refusals(client, admin):
    bad = client.post("/admin/api/syncs", json={"pull": True, "dry_run": True}, headers=admin)
    assert bad.status_code == 400
    unknown = client.post("/admin/api/syncs", json={"pull": True, "destination": "nope"}, headers=admin)
    assert unknown.status_code == 404


def test_scheduler_gets_a_pull_job_on_its_own_schedule(app):
    specs = {s.id: s for s in sync_jobs(app)}
    assert set(specs) == {"sync:test-ehr", "pull:test-ehr"}
    assert (
        specs["pull:test-ehr"].trigger == "interval" and specs["pull:test-ehr"].trigger_args["seconds"] == 300
    )
    assert specs["pull:test-ehr"].trigger_args["max_instances"] == 1
    report = specs["pull:test-ehr"].func(app)
    assert report["state"] == "done" and report["destination"] == "test-ehr"


def runs(db):
    with db.reader() as conn:
        return conn.execute(select(sync_run.c.run_id)).scalars().all()


def test_a_paused_destination_is_not_pulled_from(app, client, admin, db, receiver):
    """Paused: the admin trigger answers 409 (as for a push) and the scheduler's pull job starts no run."""
    assert client.post("/admin/api/destinations/test-ehr/pause", headers=admin).status_code == 200
    refused = client.post("/admin/api/syncs", json={"destination": "test-ehr", "pull": True}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "paused"
    assert "test-ehr is paused; resume it first" in refused.json["error"]["message"]
    every = client.post("/admin/api/syncs", json={"pull": True}, headers=admin)  # the only puller: 409 too
    assert every.status_code == 409 and every.json["error"]["code"] == "paused"
    job = {s.id: s for s in sync_jobs(app)}["pull:test-ehr"]
    assert job.func(app) == {
        "destination": "test-ehr",
        "skipped": "destination test-ehr is paused; resume it first",
    }
    assert runs(db) == [] and receiver.requests == []  # nothing started, nothing asked of the EHR
    with db.reader() as conn:
        audited = (
            conn.execute(select(audit_event.c.outcome).where(audit_event.c.action == "sync.pull.trigger"))
            .scalars()
            .all()
        )
    assert audited == [409, 409]
    client.post("/admin/api/destinations/test-ehr/resume", headers=admin)
    resumed = client.post("/admin/api/syncs", json={"destination": "test-ehr", "pull": True}, headers=admin)
    assert resumed.status_code == 202
    assert wait_for_run(client, admin, resumed.json["run_id"])["state"] == "done"


def test_an_open_circuit_stops_pulls_until_it_half_opens(app, client, admin, db):
    """Opened by failures (of pushes or pulls: one breaker per server), the circuit keeps pulls away too."""
    opened = datetime.now(UTC)
    with db.writer() as conn:
        StateRepository(conn).set_breaker("test-ehr", Breaker("open", 5, opened))
    refused = client.post("/admin/api/syncs", json={"destination": "test-ehr", "pull": True}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "circuit-open"
    assert (
        "circuit is open after 5 consecutive failures; it half-opens at" in refused.json["error"]["message"]
    )
    job = {s.id: s for s in sync_jobs(app)}["pull:test-ehr"]
    assert "circuit is open" in job.func(app)["skipped"] and runs(db) == []
    with db.writer() as conn:  # the cool-down (300 s by default) has passed: half-open, the pull probes
        StateRepository(conn).set_breaker("test-ehr", Breaker("open", 5, opened - timedelta(seconds=301)))
    report = job.func(app)
    assert report["state"] == "done", report
    with db.reader() as conn:
        assert StateRepository(conn).get("test-ehr").breaker == Breaker()  # the healthy probe closed it
