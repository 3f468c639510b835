"""Delivered summary requests are purged after the sent retention, only once the ledger says sent; a re-run
after the purge still sends nothing (both databases, real receiver)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from integration.store.schema import audit_event, sync_outbox
from integration.summaries.jobs import purge_history
from integration.summaries.retention import purge_delivered_requests
from tests.summaries.conftest import post_batch
from tests.summaries.delivery_helpers import series_batch
from tests.summaries.test_transport import created, headers_for, ledger, referrer_table, run_jobs
from tests.sync.receiver import outcome


def request_rows(app):
    o = sync_outbox.c
    with app.extensions["horizon.db"].reader() as conn:
        return conn.execute(select(o.pk, o.status).where(o.kind == "request").order_by(o.pk)).all()


def test_sent_requests_go_after_the_retention_and_nothing_is_sent_again(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url))
    post_batch(app.test_client(), headers_for(app, "clinic"), series_batch())
    run_jobs(app, "dr-ref")
    (entry,) = ledger(app)
    assert entry.state == "sent" and [r.status for r in request_rows(app)] == ["sent", "sent"]
    now = datetime.now(UTC)
    assert purge_history(app, now=now + timedelta(days=29))["delivered_requests"] == 0
    report = purge_history(app, now=now + timedelta(days=31))  # sync_sent_retention_days = 30
    assert report["delivered_requests"] == 2 and request_rows(app) == []
    (after,) = ledger(app)
    assert (after.state, after.content_hash, after.version) == ("sent", entry.content_hash, entry.version)
    with app.extensions["horizon.db"].reader() as conn:
        actions = conn.execute(select(audit_event.c.action)).scalars().all()
    assert "summary.retention.purge" in actions
    run_jobs(app, "dr-ref")  # nothing new: the purge did not make the version look undelivered
    assert len(created(receiver, "Bundle")) == 1 and request_rows(app) == []


def test_rows_of_a_dead_version_stay(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url))
    post_batch(app.test_client(), headers_for(app, "clinic"), series_batch())
    receiver.fail_next(1, 400, body=outcome("not here", "business-rule"))
    run_jobs(app, "dr-ref")
    assert [e.state for e in ledger(app)] == ["dead"]
    kept = request_rows(app)
    assert sorted(r.status for r in kept) == ["dead", "sent"]  # the DocumentReference went; the Bundle died
    later = datetime.now(UTC) + timedelta(days=365)
    assert purge_delivered_requests(app.extensions["horizon.db"], later) == 0
    assert request_rows(app) == kept
