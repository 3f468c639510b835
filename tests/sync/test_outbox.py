"""Outbox leases on both databases: a lane has one holder, an expired lease is taken over, outcomes from a
holder whose lease ran out cannot undo another's, and re-queueing a dead letter happens once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integration.sync.outbox import OutboxRepository, OutboxWrite

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _enqueue(db, lanes=3, per_lane=2):
    writes = [
        OutboxWrite.resource("Observation", f"o{lane}-{i}", 1, False, f"p{lane}")
        for lane in range(lanes)
        for i in range(per_lane)
    ]
    with db.writer() as conn:
        assert OutboxRepository(conn).enqueue("d", writes, T0) == (lanes * per_lane, 0)


def _claim(db, holder, now=T0, lanes=10, items=10):
    with db.writer() as conn:
        return OutboxRepository(conn).claim("d", holder, lanes=lanes, items=items, lease_seconds=60, now=now)


def test_a_lane_has_one_holder_until_its_lease_runs_out(db):
    _enqueue(db)
    first = _claim(db, "a", lanes=2)
    assert {i.lane for i in first} == {"p0", "p1"} and [i.resource_id for i in first][:2] == ["o0-0", "o0-1"]
    second = _claim(db, "b")
    assert {i.lane for i in second} == {"p2"}
    assert _claim(db, "c") == []
    later = _claim(db, "c", now=T0 + timedelta(seconds=61))  # a and b died: their leases ran out
    assert {i.lane for i in later} == {"p0", "p1", "p2"}


def test_outcomes_only_touch_pending_rows_and_release_frees_lanes(db):
    _enqueue(db, lanes=1, per_lane=1)
    (item,) = _claim(db, "a")
    with db.writer() as conn:
        repo = OutboxRepository(conn)
        repo.mark_dead(item.pk, T0, None, 400, "HTTP 400", "{}")
        repo.mark_sent([item.pk], T0, None, 200)  # a late holder cannot overwrite the dead letter
        assert repo.get(item.pk)["status"] == "dead"
        repo.release("d", "a")
        assert repo.requeue_dead(item.pk, T0) is True
        assert repo.requeue_dead(item.pk, T0) is False  # the second click changes nothing
    assert [i.pk for i in _claim(db, "b")] == [item.pk]


def test_deferring_holds_the_whole_lane_back(db):
    _enqueue(db, lanes=2, per_lane=2)
    items = _claim(db, "a")
    with db.writer() as conn:
        repo = OutboxRepository(conn)
        repo.defer(items[0], "d", T0 + timedelta(seconds=30), T0, 503, "HTTP 503")
        repo.release("d", "a")
    again = _claim(db, "b", now=T0 + timedelta(seconds=1))
    assert {i.lane for i in again} == {"p1"}
    assert {i.lane for i in _claim(db, "c", now=T0 + timedelta(seconds=31))} == {"p0"}


def test_enqueue_stores_every_field_in_order_and_skips_known_keys(db):
    """The PostgreSQL path inserts from arrays: every OutboxWrite field must land, in the given order."""
    writes = [
        OutboxWrite.resource("Observation", "o2", 3, True, None),
        OutboxWrite.request(
            lane="r1",
            dedupe_key="hook/1",
            method="POST",
            path="hooks/a",
            body='{"a": 1}',
            content_type="application/json",
            patient_id="p1",
            headers={"X-Kind": "summary"},
            signer="webhook",
        ),
        OutboxWrite.resource("Observation", "o1", 1, False, "p1"),
    ]
    with db.writer() as conn:
        repo = OutboxRepository(conn)
        assert repo.enqueue("d", writes, T0, "run1") == (3, 0)
        assert repo.enqueue("d", writes[:1], T0, fresh=True) == (1, 0)  # the unique key still skips it
        assert repo.enqueue("d", writes[:1], T0) == (0, 0)
        rows = [repo.get(pk) for pk in range(1, 10)]
    rows = sorted((r for r in rows if r), key=lambda r: r["pk"])
    assert [r["dedupe_key"] for r in rows] == [w.dedupe_key for w in writes]
    for row, write in zip(rows, writes, strict=True):
        assert {k: row[k] for k in write.__dict__} == write.__dict__
        assert (row["destination"], row["status"], row["attempts"]) == ("d", "pending", 0)
        assert row["run_id"] == "run1"
        assert row["next_attempt_at"] == row["created_at"] == T0
