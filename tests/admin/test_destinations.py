"""Admin view of destinations (lag, depth, circuit, capabilities) and pause/resume, on a real receiver."""

from __future__ import annotations

from tests.admin.conftest import wait_for_run
from tests.sync.conftest import load


def _dest(client, admin, query=""):
    response = client.get(f"/admin/api/destinations{query}", headers=admin)
    assert response.status_code == 200
    (dest,) = response.json["destinations"]
    return dest


def test_lag_depth_and_last_success_follow_a_run(client, admin, db, ctx, receiver):
    load(db, ctx, patients=1)
    before = _dest(client, admin)
    assert before["cursor_lag"] > 0 and before["outbox_depth"] == 0 and before["last_success"] is None
    assert before["circuit"] == "closed" and before["enabled"] and not before["paused"]
    run = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin).json
    wait_for_run(client, admin, run["run_id"])
    after = _dest(client, admin)
    assert after["cursor_lag"] == 0 and after["outbox_depth"] == 0 and after["last_success"]
    assert after["last_run"]["state"] == "done" and after["oldest_pending_age_seconds"] is None


def test_capabilities_are_learned_on_demand_and_shown(client, admin, receiver):
    dest = _dest(client, admin, "?refresh=capabilities")
    assert dest["capabilities"]["transaction"] is True and dest["capabilities_at"]
    assert "/fhir/metadata" in [r[1] for r in receiver.requests]


def test_pause_blocks_triggers_until_resumed(client, admin, db, ctx, receiver):
    load(db, ctx, patients=1)
    assert client.post("/admin/api/destinations/test-ehr/pause", headers=admin).json["paused"] is True
    assert _dest(client, admin)["paused"] is True
    refused = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin)
    assert refused.status_code == 409
    assert client.post("/admin/api/destinations/test-ehr/resume", headers=admin).status_code == 200
    run = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin)
    assert run.status_code == 202
    assert wait_for_run(client, admin, run.json["run_id"])["counts"]["sent"] > 0
    assert client.post("/admin/api/destinations/nowhere/pause", headers=admin).status_code == 404
