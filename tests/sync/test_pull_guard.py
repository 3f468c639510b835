"""Pause switch and circuit breaker applied to pulls, against a real EHR server on 127.0.0.1 (both databases):
failures of pull requests count toward the destination's breaker, an open circuit or a pause stops a pull
at its next request, and what was stored before the stop stays stored."""

from __future__ import annotations

from datetime import timedelta

from integration.sync.pull_state import PullStateRepository
from integration.sync.state import StateRepository
from tests.sync import test_pull
from tests.sync.conftest import make_destination
from tests.sync.test_pull import T0, destination, pull, service_request

world = test_pull.world  # the same EHR and clinic patients as the pull tests


def guarded(receiver, threshold, **pull):
    fields = {"referrals": True, "demographics": True, "clinic_references": [test_pull.CLINIC], **pull}
    return make_destination(
        receiver.url, pull=fields, breaker={"failure_threshold": threshold, "cooldown_seconds": 60}
    )


def breaker(db):
    with db.reader() as conn:
        return StateRepository(conn).get("test-ehr").breaker


def test_pull_failures_open_the_destinations_breaker_and_an_open_circuit_stops_pulls(
    app, db, receiver, world
):
    dest = guarded(receiver, 2)
    receiver.fail_next(2, 503)  # the Patient search, then the ServiceRequest search
    failed = pull(app, dest)
    assert failed["state"] == "failed" and failed["counts"]["failed_types"] == 2
    state = breaker(db)
    assert state.state == "open" and state.failures == 2
    asked = len(receiver.requests)
    stopped = pull(app, dest)  # the circuit is open: not one request goes out
    assert len(receiver.requests) == asked
    assert stopped["state"] == "done" and stopped["counts"]["stopped"] == 1
    assert "circuit is open after 2 consecutive failures" in stopped["errors"][0]["error"]


def test_a_healthy_pull_answer_resets_the_failure_count(app, db, receiver, world):
    dest = guarded(receiver, 3, referrals=False)
    receiver.fail_next(1, 500)
    assert pull(app, dest)["counts"]["failed_types"] == 1
    assert breaker(db).failures == 1
    assert pull(app, dest)["state"] == "done"
    assert breaker(db).failures == 0 and breaker(db).state == "closed"


def test_a_pause_during_a_pull_stops_it_at_the_next_request_keeping_what_was_stored(app, db, receiver, world):
    for n in range(5):
        receiver.ehr.put(service_request(f"sr-{n}"), T0 + timedelta(seconds=n))
    dest = destination(receiver, demographics=False, page_size=2)

    def pause(_type):  # an admin pauses the destination while the first page is being stored
        with db.writer() as conn:
            StateRepository(conn).set_paused("test-ehr", True)

    result = pull(app, dest, fault=pause)
    assert result["state"] == "done" and result["counts"]["stopped"] == 1
    assert result["counts"]["stored"] == 2 and result["counts"]["fetched"] == 2  # the first page only
    assert "paused; resume it first" in result["errors"][-1]["error"]
    with db.reader() as conn:  # the stored page's watermark holds; the next pull goes on from there
        assert PullStateRepository(conn).watermark("test-ehr", "ServiceRequest") == T0 + timedelta(seconds=1)
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", False)
    rest = pull(app, dest)
    assert rest["counts"]["stored"] == 3


def test_a_pull_started_on_a_paused_destination_asks_the_ehr_nothing(app, db, receiver, world):
    """Even past the job's and the admin's checks (paused in between), not one request goes out."""
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", True)
    result = pull(app, destination(receiver))
    assert result["state"] == "done" and result["counts"] == {"stopped": 1, "modes": {}}
    assert "paused" in result["errors"][0]["error"] and receiver.requests == []
