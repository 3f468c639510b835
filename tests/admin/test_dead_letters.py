"""Dead letters keep the partner's OperationOutcome and are retried once, however often one clicks."""

from __future__ import annotations

import time
from collections import Counter

from mappings.ids import resource_id
from tests.admin.conftest import wait_for_run
from tests.sync.conftest import assert_mirrors, load


def test_dead_letter_shown_then_retried_once(client, admin, db, ctx, receiver):
    batch = load(db, ctx, patients=2)
    bad = resource_id("patient", batch["patients"][0]["id"])
    receiver.bad_ids[bad] = 400
    run = client.post("/admin/api/syncs", json={"destination": "test-ehr"}, headers=admin).json
    assert wait_for_run(client, admin, run["run_id"])["counts"]["dead"] == 1
    listed = client.get("/admin/api/dead-letters?destination=test-ehr", headers=admin)
    (dead,) = listed.json["dead_letters"]
    assert dead["resource_id"] == bad and dead["last_status"] == 400
    assert dead["response"]["resourceType"] == "OperationOutcome"

    del receiver.bad_ids[bad]  # the partner fixed its side
    first = client.post(f"/admin/api/dead-letters/{dead['id']}/retry", headers=admin)
    second = client.post(f"/admin/api/dead-letters/{dead['id']}/retry", headers=admin)
    assert first.status_code == 202 and first.json["requeued"] is True
    assert second.status_code == 200 and second.json["requeued"] is False
    wait_for_run(client, admin, first.json["run_id"])
    deadline = time.monotonic() + 10
    while ("Patient", bad) not in receiver.store and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Counter(w[1] for w in receiver.writes)[f"Patient/{bad}"] == 1  # applied once, after two clicks
    assert client.get("/admin/api/dead-letters", headers=admin).json["dead_letters"] == []
    assert_mirrors(receiver, db)
    assert client.post("/admin/api/dead-letters/999999/retry", headers=admin).status_code == 404
