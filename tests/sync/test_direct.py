"""Direct delivery from the change feed (sync/direct.py) against a real receiver, on both databases:
the same exactly-once effect, order and dead letters as the outbox path, with each version's outbox
row written once in its final state, and the outbox path taking over whatever cannot go directly."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import func, select, update

from integration.store.schema import change_feed, sync_lane, sync_outbox
from integration.sync import service
from integration.sync.direct import DirectDelivery
from integration.sync.engine import Counts, DeliveryEngine
from integration.sync.feed import advance
from integration.sync.outbox import OutboxRepository, OutboxWrite
from integration.sync.state import StateRepository
from mappings.ids import resource_id
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


def run(db, settings, destination, linger: float = 5.0, engine: DeliveryEngine | None = None) -> dict:
    """A sync run as the scheduler starts one: direct from the feed, then the outbox path."""
    started, created = service.start(db, settings, destination, {}, "test")
    assert created
    counts = service.execute(db, settings, destination, started["run_id"], {"linger": linger}, engine)
    return counts.as_dict()


def direct(db, settings, destination, **kwargs) -> Counts:
    counts = Counts()
    DirectDelivery(DeliveryEngine(db, settings, destination, **kwargs)).deliver(None, counts)
    return counts


def statuses(db) -> Counter:
    o = sync_outbox.c
    with db.reader() as conn:
        return Counter(dict(conn.execute(select(o.status, func.count()).group_by(o.status)).all()))


def cursor(db, name: str = "test-ehr") -> int:
    with db.reader() as conn:
        return StateRepository(conn).get(name).cursor_seq


def feed_end(db) -> int:
    with db.reader() as conn:
        return int(conn.execute(select(func.max(change_feed.c.seq))).scalar_one())


@pytest.mark.parametrize("mode", ["transaction", "batch", "individual"])
def test_every_version_arrives_once_with_one_sent_row_and_no_lane_leases(db, ctx, settings, receiver, mode):
    load(db, ctx, patients=3)
    destination = make_destination(receiver.url, write_mode=mode, batch_size=7)
    counts = direct(db, settings, destination)
    with db.reader() as conn:
        versions = conn.execute(select(func.count()).select_from(change_feed)).scalar_one()
        lanes = conn.execute(select(func.count()).select_from(sync_lane)).scalar_one()
    assert counts.sent == versions and counts.dead == counts.retrying == 0
    assert statuses(db) == Counter({"sent": versions}) and lanes == 0  # nothing waits: no lane to lease
    assert cursor(db) == feed_end(db)
    assert_mirrors(receiver, db)
    assert max(Counter(receiver.writes).values()) == 1
    before = len(receiver.requests)
    assert run(db, settings, destination)["sent"] == 0 and len(receiver.requests) == before


def test_a_new_change_queues_behind_its_lanes_pending_write(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=2)
    destination = make_destination(receiver.url)
    held_patient = resource_id("patient", batch["patients"][0]["id"])
    later = datetime.now(UTC) + timedelta(days=1)
    with db.writer() as conn:  # an earlier write of that patient waits for a retry tomorrow
        write = OutboxWrite.resource("Patient", held_patient, 99, False, held_patient)
        OutboxRepository(conn).enqueue("test-ehr", [write], datetime.now(UTC))
        conn.execute(update(sync_outbox).values(next_attempt_at=later))
    counts = direct(db, settings, destination)
    o = sync_outbox.c
    with db.reader() as conn:
        waiting = conn.execute(
            select(o.pk, o.version_id).where(o.lane == held_patient, o.status == "pending").order_by(o.pk)
        ).all()
    assert waiting[0].version_id == 99 and len(waiting) > 1  # queued behind it, in feed order
    assert not any(w[1].endswith(held_patient) or w[1] in _refs(db, held_patient) for w in receiver.writes)
    assert counts.sent > 0 and cursor(db) == feed_end(db)  # the other patient's writes went
    with db.writer() as conn:  # the made-up version 99 leaves the queue; the wait is over
        conn.execute(update(sync_outbox).where(o.version_id == 99).values(status="dead"))
        conn.execute(
            update(sync_outbox).where(o.status == "pending").values(next_attempt_at=datetime.now(UTC))
        )
    run(db, settings, destination)
    assert_mirrors(receiver, db)


def _refs(db, patient: str) -> set[str]:
    """`Type/id` of every resource of one patient."""
    c = change_feed.c
    with db.reader() as conn:
        rows = conn.execute(select(c.resource_type, c.resource_id).where(c.patient_id == patient))
        return {f"{t}/{i}" for t, i in rows}


def test_a_failing_exchange_holds_its_lanes_and_the_outbox_path_finishes(db, ctx, settings, receiver):
    load(db, ctx, patients=3)
    destination = make_destination(receiver.url, batch_size=10)
    receiver.fail_next(1, 503)
    receiver.fail_next(1, 500, commit=True)  # applied, answer lost: sent again, held once
    counts = direct(db, settings, destination)
    assert counts.sent == 0 and counts.retrying == 10  # the first exchange failed: nothing more read
    o = sync_outbox.c
    with db.reader() as conn:
        rows = conn.execute(select(o.attempts, o.next_attempt_at, o.status)).all()
    tried = Counter((r.attempts, r.status) for r in rows)  # and the chunk read while it was in flight
    assert tried[(1, "pending")] == 10 and set(tried) <= {(1, "pending"), (0, "pending")}
    assert cursor(db) < feed_end(db)
    done = run(db, settings, destination)
    assert done["dead"] == 0 and cursor(db) == feed_end(db)
    assert_mirrors(receiver, db)
    assert set(statuses(db)) == {"sent"}


def test_a_refused_entry_is_a_dead_letter_an_admin_can_retry(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=3)
    destination = make_destination(receiver.url, write_mode="batch")
    bad_id = resource_id("patient", batch["patients"][0]["id"])
    receiver.bad_ids[bad_id] = 422
    counts = direct(db, settings, destination)
    assert counts.dead == 1 and counts.errors[0]["status"] == 422
    with db.reader() as conn:
        dead = OutboxRepository(conn).dead_letters("test-ehr", 10, None)
    assert len(dead) == 1 and dead[0]["resource_id"] == bad_id and dead[0]["last_status"] == 422
    assert counts.errors[0]["outbox"] == dead[0]["pk"]
    assert orjson.loads(dead[0]["response"])["resourceType"] == "OperationOutcome"
    others = [k for k, (_v, deleted) in current(db).items() if not deleted and k != ("Patient", bad_id)]
    assert all(k in receiver.store for k in others)
    del receiver.bad_ids[bad_id]
    with db.writer() as conn:  # what the admin endpoint does; the lane row exists for the claim
        assert OutboxRepository(conn).requeue_dead(dead[0]["pk"], datetime.now(UTC))
    assert run(db, settings, destination)["sent"] == 1
    assert ("Patient", bad_id) in receiver.store


def test_a_crash_between_send_and_record_sends_again_and_lands_once(db, ctx, settings, receiver):
    load(db, ctx, patients=2)
    destination = make_destination(receiver.url, batch_size=10)

    def crash() -> None:
        raise RuntimeError("worker died after send")

    with pytest.raises(RuntimeError):
        direct(db, settings, destination, after_send=crash)
    assert cursor(db) == 0 and statuses(db) == Counter()  # nothing recorded
    assert len(receiver.writes) == 10
    assert run(db, settings, destination)["dead"] == 0
    assert_mirrors(receiver, db)
    applied = Counter(receiver.writes)
    assert max(applied.values()) == 2 and sum(1 for n in applied.values() if n == 2) == 10


def test_two_versions_of_one_resource_never_share_a_bundle(db, ctx, settings, receiver):
    """v1 and v2 (a deletion) in one backlog: never one Bundle with both (a server refuses such a
    transaction, or applies the DELETE first); v1 then v2, each once, and no exchange refused."""
    batch = load(db, ctx, patients=1)
    session = copy.deepcopy(batch["sessions"][0])
    session["vitals"] = session["vitals"][:1]
    store(db, ctx, {"sessions": [session]})  # some Observations deleted, in the same backlog
    deleted = [k for k, (_v, gone) in current(db).items() if gone]
    assert deleted
    destination = make_destination(receiver.url, batch_size=500)
    done = run(db, settings, destination)
    assert done["dead"] == 0 and done["retrying"] == 0
    assert_mirrors(receiver, db)
    key = f"{deleted[0][0]}/{deleted[0][1]}"
    assert [w[0] for w in receiver.writes if w[1] == key] == ["PUT", "DELETE"]
    assert [r for r in receiver.requests if r[2] >= 400] == []  # no refused Bundle, no one-by-one fallback
    assert {r[1] for r in receiver.requests} == {"/fhir"}


def test_a_second_consumer_moving_the_cursor_stops_this_one_without_recording(db, ctx, settings, receiver):
    load(db, ctx, patients=2)
    destination = make_destination(receiver.url, batch_size=5)

    def other_consumer() -> None:  # another run fed the outbox meanwhile (the cursor moved on)
        advance(db, destination)

    counts = direct(db, settings, destination, after_send=other_consumer)
    assert counts.sent == 0  # its outcome was the other consumer's to record
    with db.reader() as conn:
        versions = conn.execute(select(func.count()).select_from(change_feed)).scalar_one()
    assert statuses(db) == Counter({"pending": versions})  # the other consumer's rows, none recorded here
    run(db, settings, destination)
    assert_mirrors(receiver, db)
    assert set(statuses(db)) == {"sent"}


def test_types_and_consent_filter_and_a_paused_destination_reads_nothing(db, ctx, settings, receiver):
    load(db, ctx, patients=2)
    only_patients = make_destination(receiver.url, resource_types=["Patient"])
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", True)
    assert direct(db, settings, only_patients).sent == 0 and cursor(db) == 0 and not receiver.requests
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", False)
    counts = direct(db, settings, only_patients)
    patients = sum(1 for (t, _i) in current(db) if t == "Patient")
    assert counts.sent == patients and {w[1].split("/")[0] for w in receiver.writes} == {"Patient"}
    assert statuses(db) == Counter({"sent": patients}) and cursor(db) == feed_end(db)


def test_a_lane_held_by_retry_after_sends_nothing_when_new_changes_arrive(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=1)
    destination = held_by_retry_after(receiver)  # the one Bundle: every lane waits 5 minutes
    first = run(db, settings, destination, linger=0)
    assert first["sent"] == 0 and first["retrying"] > 0
    before = len(receiver.requests)
    store(db, ctx, vitals_trimmed(batch))  # new changes of the held patient: queued behind its head
    assert run(db, settings, destination, linger=0)["sent"] == 0 and len(receiver.requests) == before
    end_holds(db)
    run(db, settings, destination, linger=0)
    assert_mirrors(receiver, db)
