"""Admin pull trigger (`POST /admin/api/syncs` with `"pull": true`) against a real EHR server: 202 and a
run to watch, one pull at a time per destination beside its push, audited; scheduler jobs per pull."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from integration.app import create_app
from integration.settings import Settings
from integration.store.schema import audit_event
from integration.sync.jobs import sync_jobs
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
