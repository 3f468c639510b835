"""The summary ledger on both databases: due rows under concurrent writers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import insert

from integration.store.schema import summary_delivery
from integration.summaries.ledger import SummaryLedger

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
REASONS = ("session-completed", "series-completed", "safety-signal", "weekly-digest", "correction")
THREADS = 6
ROUNDS = 8


def _entries(db) -> list:
    with db.reader() as conn:
        return SummaryLedger(conn).entries()


def test_concurrent_triggers_share_one_due_row_per_pair(db):
    """The scan, the digest job and an admin trigger at once: one due row per (patient, referrer), holding
    every trigger's reasons (none lost to a concurrent merge)."""
    barrier = threading.Barrier(THREADS, timeout=30)
    errors: list[BaseException] = []

    def trigger(n: int) -> None:
        try:
            for round_ in range(ROUNDS):
                barrier.wait()
                with db.writer() as conn:
                    SummaryLedger(conn).add_due(
                        f"patient-{round_}", "dr-ref", [REASONS[n % len(REASONS)]], NOW
                    )
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=trigger, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    entries = _entries(db)
    assert sorted(e.patient_id for e in entries) == [f"patient-{r}" for r in range(ROUNDS)]
    assert {e.state for e in entries} == {"due"}
    assert all(e.reasons == tuple(sorted(REASONS)) for e in entries)


def test_a_prepared_pair_gets_a_new_due_row(db):
    with db.writer() as conn:
        ledger = SummaryLedger(conn)
        first = ledger.add_due("patient-1", "dr-ref", ["session-completed"], NOW)
        assert ledger.add_due("patient-1", "dr-ref", ["correction"], NOW) == first
        assert ledger.skip(first, "nothing new to send", NOW)
        second = ledger.add_due("patient-1", "dr-ref", ["correction"], NOW)
        assert second != first
        assert ledger.add_due("patient-1", "other", ["correction"], NOW) not in (first, second)
    assert [(e.state, e.reasons) for e in _entries(db)] == [
        ("skipped", ("correction", "session-completed")),
        ("due", ("correction",)),
        ("due", ("correction",)),
    ]


def test_migration_merges_the_duplicate_due_rows_written_before(database_url):
    """0008 adds the one-due-row index: duplicates stored before it are merged (oldest row, every reason)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from integration.store.db import make_engine
    from integration.store.migrate import _config

    engine = make_engine(database_url)
    config = _config()
    before = ScriptDirectory.from_config(config).get_revision("0008").down_revision
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, before)
        for patient, referrer, state, reasons in [
            ("p1", "dr-ref", "due", ["session-completed"]),
            ("p1", "dr-ref", "skipped", ["correction"]),
            ("p1", "dr-ref", "due", ["correction", "safety-signal"]),
            ("p2", "dr-ref", "due", ["weekly-digest"]),
            ("p1", "dr-ref", "due", ["correction"]),
        ]:
            conn.execute(
                insert(summary_delivery).values(
                    patient_id=patient,
                    referrer=referrer,
                    state=state,
                    reasons=orjson.dumps(reasons).decode(),
                    created_at=NOW,
                )
            )
        command.upgrade(config, "head")
    with engine.begin() as conn:
        rows = SummaryLedger(conn).entries()
    engine.dispose()
    assert [(e.pk, e.patient_id, e.state, e.reasons) for e in rows] == [
        (1, "p1", "due", ("correction", "safety-signal", "session-completed")),
        (2, "p1", "skipped", ("correction",)),
        (4, "p2", "due", ("weekly-digest",)),
    ]


def _row(conn, state: str, at: datetime, patient: str = "p1") -> int:
    return conn.execute(
        insert(summary_delivery).values(
            patient_id=patient,
            referrer="dr-ref",
            state=state,
            reasons='["correction"]',
            created_at=at,
            prepared_at=at,
            sent_at=at if state in ("sent", "dead") else None,
        )
    ).inserted_primary_key[0]


def test_purge_deletes_only_old_skipped_rows(db):
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=1)
    with db.writer() as conn:
        keep = [_row(conn, state, old, f"p-{state}") for state in ("due", "prepared", "sent", "dead")]
        keep.append(_row(conn, "skipped", recent))
        gone = [_row(conn, "skipped", old) for _ in range(3)]
    with db.writer() as conn:
        assert SummaryLedger(conn).purge_skipped(NOW - timedelta(days=30), limit=2) == 2
    with db.writer() as conn:
        assert SummaryLedger(conn).purge_skipped(NOW - timedelta(days=30), limit=2) == 1
        assert SummaryLedger(conn).purge_skipped(NOW - timedelta(days=30), limit=2) == 0
    assert sorted(e.pk for e in _entries(db)) == sorted(keep)
    assert not set(gone) & {e.pk for e in _entries(db)}
