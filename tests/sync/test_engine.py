"""Delivery against a real FHIR receiver on 127.0.0.1, on both databases: exactly-once effect across
retries, token refresh, dead letters, crashes between send and ack, deletions and concurrent workers."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter

import orjson
import pytest
from sqlalchemy import func, select

from integration.store.schema import sync_lane, sync_outbox
from integration.sync import service
from integration.sync.engine import DeliveryEngine
from integration.sync.feed import advance
from integration.sync.outbox import OutboxRepository
from integration.sync.state import StateRepository
from tests.sync.conftest import (
    assert_mirrors,
    current,
    end_holds,
    held_by_retry_after,
    load,
    make_destination,
    store,
    vitals_trimmed,
)


def sync(db, settings, destination, **kwargs):
    advance(db, destination)
    linger = kwargs.pop("linger", 5.0)
    return DeliveryEngine(db, settings, destination, **kwargs).deliver(linger=linger)


def applied(receiver):
    """How many times each (method, resource, version) was applied by the receiver."""
    return Counter(receiver.writes)


@pytest.mark.parametrize(
    ("mode", "write_by"),
    [("transaction", "id"), ("batch", "id"), ("individual", "id"), ("transaction", "identifier")],
)
def test_every_resource_arrives_once_and_a_rerun_sends_nothing(db, ctx, settings, receiver, mode, write_by):
    load(db, ctx)
    destination = make_destination(receiver.url, write_mode=mode, write_by=write_by)
    counts = sync(db, settings, destination)
    live = sum(1 for _v, deleted in current(db).values() if not deleted)
    assert counts.sent == live and counts.dead == 0
    if write_by == "id":
        assert_mirrors(receiver, db)
    else:  # the receiver chose its own ids: every identified resource is there once
        assert len(receiver.store) == live
    before = len(receiver.requests)
    again = sync(db, settings, destination)
    assert again.sent == 0 and len(receiver.requests) == before


def test_retries_honour_retry_after_and_land_once(db, ctx, settings, receiver):
    load(db, ctx)
    destination = make_destination(receiver.url, write_mode="batch")
    receiver.fail_next(1, 503)
    receiver.fail_next(1, 429, {"Retry-After": "1"})
    receiver.fail_next(1, 500, commit=True)  # applied, but the answer is lost: re-sent, still once
    started = time.monotonic()
    counts = sync(db, settings, destination)
    assert counts.retrying >= 3 and counts.dead == 0
    assert time.monotonic() - started >= 1.0  # the Retry-After second was waited
    assert_mirrors(receiver, db)


def test_401_refreshes_once_and_replays(db, ctx, settings, receiver, monkeypatch):
    monkeypatch.setenv("TEST_EHR_TOKEN", "s3cret-token")
    receiver.token = "s3cret-token"
    receiver.unauthorized_once = True
    load(db, ctx, patients=1)
    destination = make_destination(receiver.url, auth={"type": "bearer", "token_env": "TEST_EHR_TOKEN"})
    counts = sync(db, settings, destination)
    assert counts.dead == 0 and counts.retrying == 0 and counts.sent > 0
    assert [r[2] for r in receiver.requests[:2]] == [401, 200]
    assert_mirrors(receiver, db)


@pytest.mark.parametrize("mode", ["transaction", "batch"])
def test_a_refused_entry_is_a_dead_letter_and_other_patients_go_on(db, ctx, settings, receiver, mode):
    batch = load(db, ctx, patients=3)
    destination = make_destination(receiver.url, write_mode=mode)
    bad_patient = batch["patients"][0]["id"]
    from mappings.ids import resource_id

    bad_id = resource_id("patient", bad_patient)
    receiver.bad_ids[bad_id] = 422
    counts = sync(db, settings, destination)
    assert counts.dead == 1
    with db.reader() as conn:
        dead = OutboxRepository(conn).dead_letters("test-ehr", 10, None)
    assert len(dead) == 1 and dead[0]["resource_id"] == bad_id and dead[0]["last_status"] == 422
    assert orjson.loads(dead[0]["response"])["resourceType"] == "OperationOutcome"
    others = [k for k, (_v, deleted) in current(db).items() if not deleted and k != ("Patient", bad_id)]
    assert all(k in receiver.store for k in others)


def test_409_and_412_are_dead_letters_with_the_servers_answer(db, ctx, settings, receiver):
    load(db, ctx, patients=1)
    destination = make_destination(receiver.url, write_mode="individual")
    receiver.fail_next(1, 409, body={"resourceType": "OperationOutcome", "issue": [{"code": "conflict"}]})
    receiver.fail_next(1, 412)
    counts = sync(db, settings, destination)
    assert counts.dead == 2
    with db.reader() as conn:
        dead = OutboxRepository(conn).dead_letters("test-ehr", 10, None)
    assert sorted(d["last_status"] for d in dead) == [409, 412]
    assert any("conflict" in d["response"] for d in dead)


def test_exhausted_retries_become_dead_letters(db, ctx, settings, receiver):
    load(db, ctx, patients=1)
    destination = make_destination(
        receiver.url,
        write_mode="transaction",
        retry={"base_seconds": 0.01, "max_seconds": 0.02, "max_attempts": 2},
    )
    receiver.fail_next(10, 500)
    counts = sync(db, settings, destination)
    assert counts.dead > 0 and counts.sent == 0
    with db.reader() as conn:
        dead = OutboxRepository(conn).dead_letters("test-ehr", 1, None)
    assert "gave up after 2 attempts" in dead[0]["last_error"]


def test_a_crash_between_send_and_ack_still_lands_once(db, ctx, settings, receiver):
    load(db, ctx)
    destination = make_destination(receiver.url, write_mode="transaction", batch_size=20)

    def crash():
        raise SystemExit("worker killed after send")

    advance(db, destination)
    with pytest.raises(SystemExit):
        DeliveryEngine(db, settings, destination, lease_seconds=0.5, after_send=crash).deliver()
    assert receiver.writes  # the first bundle arrived, its outcome was never recorded
    time.sleep(0.6)  # the dead worker's lane leases run out
    DeliveryEngine(db, settings, destination).deliver()
    assert_mirrors(receiver, db)
    # the crashed bundle was re-sent: applied twice, held once (PUT by id is idempotent)
    assert max(applied(receiver).values()) == 2


def test_changes_and_deletions_follow_on_the_next_run(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=1)
    destination = make_destination(receiver.url, write_mode="batch")
    sync(db, settings, destination)
    changed = copy.deepcopy(batch)
    session = changed["sessions"][0]
    assert len(session["vitals"]) > 1
    session["vitals"] = session["vitals"][:1]
    store(db, ctx, {"sessions": [session]})
    deleted = [k for k, (_v, gone) in current(db).items() if gone]
    assert deleted
    sync(db, settings, destination)
    assert all(receiver.store[k].deleted for k in deleted)
    assert ("DELETE", f"{deleted[0][0]}/{deleted[0][1]}", None) in receiver.writes
    assert_mirrors(receiver, db)


def test_one_patients_writes_stay_in_order_while_another_waits(db, ctx, settings, receiver):
    load(db, ctx, patients=2)
    destination = make_destination(receiver.url, write_mode="individual")
    receiver.fail_next(1, 503)  # the first write of the first lane waits; its lane waits with it
    sync(db, settings, destination)
    assert_mirrors(receiver, db)
    with db.reader() as conn:
        order = conn.execute(
            select(sync_outbox.c.lane, sync_outbox.c.resource_type, sync_outbox.c.resource_id).order_by(
                sync_outbox.c.lane, sync_outbox.c.pk
            )
        ).all()
    sent_order = [w[1] for w in receiver.writes]
    for lane in {row.lane for row in order}:
        expected = [f"{r.resource_type}/{r.resource_id}" for r in order if r.lane == lane]
        got = [key for key in dict.fromkeys(sent_order) if key in set(expected)]
        assert got == expected


def test_two_engines_claiming_at_once_deliver_each_write_once(db, ctx, settings, receiver):
    load(db, ctx, patients=6)
    destination = make_destination(receiver.url, write_mode="individual", batch_size=5)
    advance(db, destination)
    receiver.delay = 0.002
    errors: list[BaseException] = []

    def work():
        try:
            DeliveryEngine(db, settings, destination).deliver()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    counts = applied(receiver)
    assert counts and max(counts.values()) == 1
    assert_mirrors(receiver, db)
    with db.reader() as conn:
        left = conn.execute(select(func.count()).where(sync_outbox.c.status != "sent")).scalar()
    assert left == 0


def test_consented_destinations_get_only_consenting_patients(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=10, seed=11)
    destination = make_destination(receiver.url, patients="consented")
    refused = [
        p
        for p in batch["patients"]
        if (p.get("consent") or {}).get("share_with_destinations") is not None
        and "test-ehr" not in p["consent"]["share_with_destinations"]
    ]
    assert refused, "the synthetic seed should include a patient who limits sharing"
    sync(db, settings, destination)
    from mappings.ids import resource_id

    for patient in batch["patients"]:
        held = ("Patient", resource_id("patient", patient["id"])) in receiver.store
        assert held == (patient not in refused)


def test_paused_destination_sends_nothing_until_resumed(db, ctx, settings, receiver):
    load(db, ctx, patients=1)
    destination = make_destination(receiver.url)
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", True)
    assert sync(db, settings, destination).sent == 0 and not receiver.writes
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", False)
    assert sync(db, settings, destination).sent > 0


def test_dry_run_builds_without_sending_or_moving_the_cursor(db, ctx, settings, receiver):
    load(db, ctx, patients=1)
    destination = make_destination(receiver.url)
    preview = service.dry_run(db, settings, destination, None)
    assert preview["mode"] == "transaction" and preview["problems"] == []
    assert preview["bundles"][0]["type"] == "transaction" and preview["entries"] > 0
    assert not receiver.requests
    with db.reader() as conn:
        assert StateRepository(conn).get("test-ehr").cursor_seq == 0


def test_auto_mode_learns_from_the_server_once_and_uses_batch(db, ctx, settings):
    from tests.sync.receiver import Receiver

    server = Receiver(transaction=False, batch=True).start()
    try:
        load(db, ctx, patients=1)
        destination = make_destination(server.url, write_mode="auto")
        counts = sync(db, settings, destination)
        sync(db, settings, destination)
    finally:
        server.stop()
    assert counts.sent > 0 and counts.dead == 0
    paths = [r[1] for r in server.requests]
    assert paths.count("/fhir/metadata") == 1  # learned on first use, then read from the table
    with db.reader() as conn:
        learned = StateRepository(conn).get("test-ehr").capabilities
    assert learned["batch"] and not learned["transaction"]


def test_breaker_opens_after_consecutive_failures_and_resumes_by_itself(db, ctx, settings, receiver):
    load(db, ctx, patients=1)
    destination = make_destination(receiver.url, breaker={"failure_threshold": 2, "cooldown_seconds": 1})
    receiver.fail_next(2, 503)
    counts = sync(db, settings, destination, linger=3.0)
    assert counts.sent == 0 and len(receiver.requests) == 2
    with db.reader() as conn:
        assert StateRepository(conn).get("test-ehr").breaker.state == "open"
    assert "circuit open" in counts.errors[-1]["error"]
    time.sleep(1.1)  # cool-down over: half-open, one probe, then closed again
    counts = sync(db, settings, destination)
    assert counts.sent > 0
    assert len(receiver.requests[2]) and receiver.requests[2][2] == 200
    with db.reader() as conn:
        assert StateRepository(conn).get("test-ehr").breaker.state == "closed"
    assert_mirrors(receiver, db)


def test_any_request_can_ride_the_same_outbox(db, ctx, settings, receiver):
    """The interface other features use (e.g. a referrer summary POST): enqueue a request, deliver, retry."""
    from datetime import UTC, datetime

    from integration.sync.outbox import OutboxWrite

    destination = make_destination(receiver.url)
    document = orjson.dumps({"resourceType": "Patient", "id": "doc-1"}).decode()
    write = OutboxWrite.request(
        lane="referrer-doc",
        dedupe_key="summary/doc-1/v1",
        method="PUT",
        path="Patient/doc-1",
        body=document,
        content_type="application/fhir+json",
        headers={"X-Horizon-Signature": "sha256=abc"},
    )
    with pytest.raises(ValueError, match="cannot be set"):
        OutboxWrite.request(
            lane="x",
            dedupe_key="x",
            method="POST",
            path="",
            body=None,
            content_type="text/plain",
            headers={"Authorization": "Bearer stolen"},
        )
    with db.writer() as conn:
        assert OutboxRepository(conn).enqueue("test-ehr", [write, write], datetime.now(UTC)) == (1, 0)
    with db.writer() as conn:
        assert OutboxRepository(conn).enqueue("test-ehr", [write], datetime.now(UTC)) == (0, 0)
    receiver.fail_next(1, 503)
    counts = DeliveryEngine(db, settings, destination).deliver(linger=5)
    assert counts.sent == 1 and counts.retrying == 1
    assert len(receiver.store[("Patient", "doc-1")].versions) == 1
    assert receiver.headers_seen[-1]["X-Horizon-Signature"] == "sha256=abc"


def test_a_signer_is_called_at_each_send_and_a_missing_one_holds_the_lane(db, ctx, settings, receiver):
    """A row naming a signer gets the signer's headers over its body at every try (none stored); an engine
    without that signer keeps the row pending (and its lane behind it) without blaming the partner."""
    from datetime import UTC, datetime

    from integration.sync.outbox import OutboxWrite

    destination = make_destination(receiver.url)
    writes = [
        OutboxWrite.request(
            lane="doc",
            dedupe_key=f"signed/{n}",
            method="PUT",
            path=f"Patient/doc-{n}",
            body=orjson.dumps({"resourceType": "Patient", "id": f"doc-{n}"}).decode(),
            content_type="application/fhir+json",
            signer="test-signer",
        )
        for n in (1, 2)
    ]
    with db.writer() as conn:
        OutboxRepository(conn).enqueue("test-ehr", writes, datetime.now(UTC))
    unsigned = DeliveryEngine(db, settings, destination).deliver(max_batches=1)
    assert (unsigned.sent, unsigned.retrying, receiver.requests) == (0, 1, [])
    with db.reader() as conn:
        state = StateRepository(conn).get("test-ehr")
        stored = conn.execute(select(sync_outbox.c.headers, sync_outbox.c.last_error)).all()
    assert state.breaker.failures == 0
    assert stored[0] == (None, "no signer 'test-signer' configured")
    with db.writer() as conn:  # the lane waits for its first row; let it go now
        conn.execute(sync_outbox.update().values(next_attempt_at=datetime.now(UTC)))
    calls: list[bytes] = []

    def sign(body: bytes) -> dict[str, str]:
        calls.append(body)
        return {"X-Test-Signature": f"len={len(body)};try={len(calls)}"}

    receiver.fail_next(1, 503)
    engine = DeliveryEngine(db, settings, destination, signers={"test-signer": sign})
    counts = engine.deliver(linger=5)
    assert counts.sent == 2 and counts.retrying == 1
    signatures = [h.get("X-Test-Signature") for h in receiver.headers_seen]
    assert signatures[0].endswith("try=1") and signatures[1].endswith("try=2")  # re-signed on the retry
    assert len(calls) == 3 and calls[0] == calls[1]


def test_logs_carry_no_token_ids_or_content(db, ctx, settings, receiver, monkeypatch, caplog):
    import logging

    monkeypatch.setenv("TEST_EHR_TOKEN", "s3cret-token-value")
    receiver.token = "s3cret-token-value"
    receiver.unauthorized_once = True
    batch = load(db, ctx, patients=1)
    destination = make_destination(receiver.url, auth={"type": "bearer", "token_env": "TEST_EHR_TOKEN"})
    receiver.fail_next(1, 500)
    with caplog.at_level(logging.DEBUG, logger="integration"):
        sync(db, settings, destination)
    text = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("integration")
    )
    assert caplog.records
    assert "s3cret-token-value" not in text
    from mappings.ids import resource_id

    assert batch["patients"][0]["id"] not in text
    assert resource_id("patient", batch["patients"][0]["id"]) not in text
    assert batch["patients"][0]["family"] not in text


def test_a_timed_out_write_is_retried_and_held_once(db, ctx, settings, receiver):
    load(db, ctx, patients=1)
    destination = make_destination(
        receiver.url, write_mode="batch", timeouts={"connect_seconds": 1, "read_seconds": 1.5}
    )  # margins: under CI load an ordinary answer can take over half a second
    receiver.slow_next, receiver.slow_seconds = 1, 3.0
    counts = sync(db, settings, destination)
    assert counts.retrying >= 1 and counts.dead == 0
    assert max(applied(receiver).values()) == 2  # applied by the timed-out request and by the retry
    assert_mirrors(receiver, db)


# --- one batch in flight while the previous one is recorded and the next one claimed ------------------


def _attempts(receiver):
    """Every write the receiver is asked for, applied or refused, in arrival order: (type/id, status)."""
    seen: list[tuple[str, int]] = []
    write = receiver._write

    def logged(method, rel, query, resource):
        status, body = write(method, rel, query, resource)
        seen.append((rel, status))
        return status, body

    receiver._write = logged
    return seen


def test_the_next_batch_is_recorded_while_one_is_in_flight(db, ctx, settings, receiver):
    """The first batch's outcome is committed while the second batch is still at the receiver."""
    load(db, ctx, patients=2)
    destination = make_destination(receiver.url, write_mode="transaction", batch_size=3)
    advance(db, destination)
    hold = receiver.hold(2)
    thread = threading.Thread(target=DeliveryEngine(db, settings, destination).deliver)
    thread.start()
    try:
        assert hold.arrived.wait(20)
        deadline = time.monotonic() + 20
        recorded = 0
        while time.monotonic() < deadline and recorded == 0:
            with db.reader() as conn:
                recorded = conn.execute(select(func.count()).where(sync_outbox.c.status == "sent")).scalar()
            time.sleep(0.02)
        assert recorded == 3  # batch 1 recorded; batch 2 held at the receiver
    finally:
        hold.commit = True
        hold.release.set()
        thread.join(timeout=60)
    assert_mirrors(receiver, db)
    assert max(applied(receiver).values()) == 1


def test_a_lane_with_a_write_to_retry_sends_nothing_claimed_ahead_for_it(db, ctx, settings, receiver):
    """Batch mode, one write per batch: the second write of a lane was claimed while its first was in
    flight; the first is refused with a temporary 503 (the exchange itself is healthy), so the second
    waits until the first is settled, while the other patient's writes go on meanwhile."""
    batch = load(db, ctx, patients=2)
    from mappings.ids import resource_id

    first = resource_id("patient", batch["patients"][0]["id"])
    destination = make_destination(
        receiver.url,
        write_mode="batch",
        batch_size=1,
        retry={"base_seconds": 0.05, "max_seconds": 0.05, "max_attempts": 3},
    )
    receiver.bad_ids[first] = 503
    seen = _attempts(receiver)
    counts = sync(db, settings, destination)
    assert counts.dead == 1 and counts.retrying == 2
    with db.reader() as conn:
        rows = conn.execute(
            select(sync_outbox.c.lane, sync_outbox.c.resource_type, sync_outbox.c.resource_id).order_by(
                sync_outbox.c.pk
            )
        ).all()
    lane = next(r.lane for r in rows if r.resource_id == first)
    later = {f"{r.resource_type}/{r.resource_id}" for r in rows if r.lane == lane and r.resource_id != first}
    tries = [n for n, (rel, _status) in enumerate(seen) if rel == f"Patient/{first}"]
    assert len(tries) == 3 and later
    assert all(n > tries[-1] for n, (rel, _status) in enumerate(seen) if rel in later)
    others = [n for n, (rel, _s) in enumerate(seen) if rel not in later and rel != f"Patient/{first}"]
    assert any(tries[0] < n < tries[-1] for n in others)  # the other patient did not wait
    assert max(applied(receiver).values()) == 1


def test_a_failing_exchange_sends_nothing_claimed_ahead_and_the_breaker_opens(db, settings, receiver):
    """Two failing exchanges open the breaker; the batch claimed ahead meanwhile (another lane, so the
    lane rule alone would let it go) is never sent."""
    from datetime import UTC, datetime

    from integration.sync.outbox import OutboxWrite

    destination = make_destination(
        receiver.url, batch_size=1, breaker={"failure_threshold": 2, "cooldown_seconds": 30}
    )
    writes = [
        OutboxWrite.request(
            lane=f"lane-{n}",
            dedupe_key=f"doc/{n}",
            method="PUT",
            path=f"Patient/doc-{n}",
            body=orjson.dumps({"resourceType": "Patient", "id": f"doc-{n}"}).decode(),
            content_type="application/fhir+json",
        )
        for n in range(6)
    ]
    with db.writer() as conn:
        OutboxRepository(conn).enqueue("test-ehr", writes, datetime.now(UTC))
    receiver.fail_next(2, 503)
    counts = DeliveryEngine(db, settings, destination).deliver(linger=3.0)
    assert counts.sent == 0 and len(receiver.requests) == 2
    assert "circuit open" in counts.errors[-1]["error"]
    with db.reader() as conn:
        assert StateRepository(conn).get("test-ehr").breaker.state == "open"
        leased = conn.execute(
            select(func.count()).select_from(sync_lane).where(sync_lane.c.holder.is_not(None))
        ).scalar()
    assert leased == 0  # every lane claimed ahead was let go


@pytest.mark.parametrize("mode", ["transaction", "batch"])
def test_two_pending_versions_of_one_resource_go_in_separate_bundles(db, ctx, settings, receiver, mode):
    """v1 not yet sent when v2 (a deletion) is queued: never one Bundle with both (a server refuses such a
    transaction, or applies the DELETE first); v1 then v2, each once, and no exchange refused."""
    batch = load(db, ctx, patients=1)
    destination = make_destination(receiver.url, write_mode=mode, batch_size=500)
    advance(db, destination)  # v1 of everything queued, nothing sent yet
    session = copy.deepcopy(batch["sessions"][0])
    session["vitals"] = session["vitals"][:1]
    store(db, ctx, {"sessions": [session]})
    deleted = [k for k, (_v, gone) in current(db).items() if gone]
    assert deleted
    counts = sync(db, settings, destination)
    assert counts.dead == 0 and counts.errors == []
    assert_mirrors(receiver, db)
    key = f"{deleted[0][0]}/{deleted[0][1]}"
    assert [w[0] for w in receiver.writes if w[1] == key] == ["PUT", "DELETE"]
    assert [r for r in receiver.requests if r[2] >= 400] == []  # no refused Bundle, no one-by-one fallback
    assert {r[1] for r in receiver.requests} == {"/fhir"}


def test_a_lane_held_by_retry_after_stays_held_when_new_changes_arrive(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=1)
    destination = held_by_retry_after(receiver)  # the one Bundle: every lane waits 5 minutes
    first = sync(db, settings, destination, linger=0)
    assert first.sent == 0 and first.retrying > 0
    before = len(receiver.requests)
    store(db, ctx, vitals_trimmed(batch))  # new changes in the held lane, due at once
    again = sync(db, settings, destination, linger=0)
    assert again.sent == 0 and len(receiver.requests) == before  # the lane's head is not due yet
    end_holds(db)
    sync(db, settings, destination, linger=0)
    assert_mirrors(receiver, db)
