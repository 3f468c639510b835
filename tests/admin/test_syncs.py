"""Admin sync endpoints against a real receiver: trigger and watch, one run at a time, dry run, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from integration.store.schema import audit_event, sync_run
from tests.admin.conftest import wait_for_run
from tests.sync.conftest import assert_mirrors, load


def test_only_admins(client, clinic_headers):
    assert client.post("/admin/api/syncs", json={}).status_code == 401
    assert client.post("/admin/api/syncs", json={}, headers=clinic_headers).status_code == 403
    assert client.get("/admin/api/destinations", headers=clinic_headers).status_code == 403
    assert client.get("/admin/api/dead-letters", headers=clinic_headers).status_code == 403


def test_trigger_then_watch_it_finish(client, admin, db, ctx, receiver):
    load(db, ctx)
    response = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin)
    assert response.status_code == 202 and response.headers["Location"].endswith(response.json["run_id"])
    run = wait_for_run(client, admin, response.json["run_id"])
    assert run["state"] == "done" and run["counts"]["sent"] > 0 and run["counts"]["dead"] == 0
    assert set(run["counts"]) >= {"sent", "unchanged", "retrying", "dead"}
    assert_mirrors(receiver, db)
    again = client.post("/admin/api/syncs", json={"full": True}, headers=admin)  # every destination
    run = wait_for_run(client, admin, again.json["runs"][0]["run_id"])
    assert run["counts"]["sent"] == 0 and run["counts"]["unchanged"] == response_count(db)
    with db.reader() as conn:
        actions = conn.execute(select(audit_event.c.action, audit_event.c.actor)).all()
    assert ("sync.trigger", "clinic-admin") in actions and ("sync.read", "clinic-admin") in actions


def response_count(db):
    from tests.sync.conftest import current

    return sum(1 for _v, deleted in current(db).values() if not deleted)


@pytest.mark.parametrize("batch_size", [1])
def test_a_trigger_while_running_returns_the_running_run(client, admin, db, ctx, receiver):
    load(db, ctx, patients=1)
    receiver.delay = 0.05
    first = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin)
    second = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin)
    assert first.status_code == 202
    assert second.status_code == 200 and second.json["run_id"] == first.json["run_id"]
    assert second.json["runs"][0]["created"] is False
    receiver.delay = 0
    assert wait_for_run(client, admin, first.json["run_id"])["state"] == "done"


def test_dry_run_answers_what_would_be_sent_and_sends_nothing(client, admin, db, ctx, receiver):
    batch = load(db, ctx, patients=2)
    mrn = batch["patients"][0]["id"]
    response = client.post("/admin/api/syncs", json={"dry_run": True, "patient": mrn}, headers=admin)
    assert response.status_code == 200
    (preview,) = response.json["destinations"]
    entries = [e for b in preview["bundles"] for e in b["entry"]]
    assert entries and all(e["request"]["method"] == "PUT" for e in entries)
    from mappings.ids import resource_id

    pid = resource_id("patient", mrn)
    assert any(e["request"]["url"] == f"Patient/{pid}" for e in entries)
    assert not any(
        e["resource"].get("id") == resource_id("patient", batch["patients"][1]["id"]) for e in entries
    )
    assert receiver.requests == []
    with db.reader() as conn:
        audited = conn.execute(select(audit_event.c.patient_id).where(audit_event.c.action == "sync.dry-run"))
        assert audited.scalar() == mrn


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"destination": "nowhere"}, 404),
        ({"colour": "red"}, 400),
        ({"full": "yes"}, 400),
        ({"destination": 5}, 400),
    ],
)
def test_bad_triggers_are_clear_errors(client, admin, body, status):
    response = client.post("/admin/api/syncs", json=body, headers=admin)
    assert response.status_code == status and response.json["error"]["message"]


def test_unknown_run_is_404(client, admin):
    assert client.get("/admin/api/syncs/nope", headers=admin).status_code == 404


def test_a_paused_destination_is_skipped_and_starts_nothing_when_it_is_the_one_asked(
    two_destinations, client, admin, db, ctx, receiver
):
    """One paused of two: a trigger for all runs the other and names the skipped one; naming it is 409."""
    load(db, ctx, patients=1)
    assert client.post("/admin/api/destinations/other-ehr/pause", headers=admin).status_code == 200
    refused = client.post("/admin/api/syncs", json={"destination": "other-ehr"}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "paused"
    started = client.post("/admin/api/syncs", json={}, headers=admin)
    assert started.status_code == 202
    assert [r["destination"] for r in started.json["runs"]] == ["test-ehr"]
    assert started.json["skipped"] == [
        {"destination": "other-ehr", "reason": "destination other-ehr is paused; resume it first"}
    ]
    assert wait_for_run(client, admin, started.json["run_id"])["state"] == "done"
    assert client.post("/admin/api/destinations/test-ehr/pause", headers=admin).status_code == 200
    with db.reader() as conn:
        before = conn.execute(select(sync_run.c.run_id)).scalars().all()
    every = client.post("/admin/api/syncs", json={}, headers=admin)  # both paused: 409, no run started
    assert every.status_code == 409 and every.json["error"]["code"] == "paused"
    with db.reader() as conn:
        assert conn.execute(select(sync_run.c.run_id)).scalars().all() == before
