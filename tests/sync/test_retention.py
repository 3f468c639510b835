"""Retention of delivery history on both databases, against a real receiver: superseded sent rows and old
finished runs go, in bounded batches; nothing that exactly-once delivery relies on goes, so neither the
change feed nor a full re-offer ever sends a version again."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from integration.store.schema import audit_event, fhir_resource, sync_outbox, sync_run
from integration.sync import retention, service
from integration.sync.outbox import OutboxRepository, OutboxWrite
from integration.sync.runs import RunRepository
from tests.sync.conftest import current, load, make_destination, store

LONG_AGO = timedelta(days=40)


def outbox(db):
    t = sync_outbox.c
    with db.reader() as conn:
        return {
            r.pk: r
            for r in conn.execute(select(t.pk, t.status, t.resource_type, t.resource_id, t.version_id))
        }


def age_everything(db, by=LONG_AGO):
    now = datetime.now(UTC)
    with db.writer() as conn:
        conn.execute(update(sync_outbox).values(updated_at=now - by, created_at=now - by))
        t = sync_run.c
        for run_id, started in conn.execute(select(t.run_id, t.started_at).where(t.state != "running")).all():
            conn.execute(
                update(sync_run)
                .where(t.run_id == run_id)
                .values(started_at=started - by, finished_at=now - by)
            )


def test_superseded_sent_rows_go_and_nothing_is_ever_sent_twice(db, ctx, settings, receiver):
    batch = load(db, ctx, patients=2)
    destination = make_destination(receiver.url)
    first = service.run_now(db, settings, destination, {}, "test")
    assert first["state"] == "done" and first["counts"]["dead"] == 0
    changed = copy.deepcopy(batch["patients"][0])
    changed["family"] = "Castellan"
    store(db, ctx, {"patients": [changed]})  # a new version of that patient's Patient
    second = service.run_now(db, settings, destination, {}, "test")
    assert second["counts"]["sent"] >= 1
    with db.writer() as conn:  # undelivered rows of a version that is not current: never purged
        OutboxRepository(conn).enqueue(
            "test-ehr",
            [
                OutboxWrite.resource("Patient", "ghost-dead", 1, False, "ghost"),
                OutboxWrite.resource("Patient", "ghost-pending", 1, False, "ghost"),
            ],
            datetime.now(UTC),
        )
        t = sync_outbox.c
        conn.execute(update(sync_outbox).where(t.resource_id == "ghost-dead").values(status="dead"))
        later = datetime.now(UTC) + timedelta(days=1)  # held back (as after a failed try): not sent below
        conn.execute(
            update(sync_outbox).where(t.resource_id == "ghost-pending").values(next_attempt_at=later)
        )
        running, _ = RunRepository(conn).start("other-ehr", {}, "test", datetime.now(UTC) - LONG_AGO, 1e9)
    age_everything(db)
    live = current(db)
    before = outbox(db)
    superseded = {
        pk
        for pk, r in before.items()
        if r.status == "sent" and live[(r.resource_type, r.resource_id)][0] != r.version_id
    }
    assert superseded  # the patient's first version (and whatever its change touched)

    report = retention.purge(db, datetime.now(UTC), 30, 30, batch=2)
    after = outbox(db)
    assert report.sent_rows == len(superseded) and set(before) - set(after) == superseded
    assert {r.resource_id for r in after.values() if r.status != "sent"} == {"ghost-dead", "ghost-pending"}
    assert all(
        live[(r.resource_type, r.resource_id)][0] == r.version_id
        for r in after.values()
        if r.status == "sent"
    )

    asked = len(receiver.requests)
    again = service.run_now(db, settings, destination, {"full": True}, "test")  # feed and full re-offer
    assert again["counts"]["sent"] == 0 and again["counts"]["unchanged"] == len(live)
    assert len(receiver.requests) == asked  # not one version sent again

    with db.reader() as conn:
        runs = {r.run_id: r.state for r in conn.execute(select(sync_run.c.run_id, sync_run.c.state))}
    # Of the two aged finished runs the older went; the destination's newest stays, however old; a running
    # run (of another destination: this one's would have been abandoned as stale by now) stays.
    assert report.runs == 1 and first["run_id"] not in runs
    assert runs[second["run_id"]] == "done" and runs[running["run_id"]] == "running"
    with db.reader() as conn:
        audit = conn.execute(
            select(audit_event.c.detail).where(audit_event.c.action == "sync.retention.purge")
        ).scalar_one()
    assert '"sent_rows"' in audit and "Patient" not in audit  # counts only


def test_purge_works_in_bounded_batches_and_honours_the_retention(db, ctx, settings, receiver):
    load(db, ctx, patients=2)
    destination = make_destination(receiver.url)
    service.run_now(db, settings, destination, {}, "test")
    with db.writer() as conn:  # make every sent row superseded: bump each resource's current version
        conn.execute(update(fhir_resource).values(version_id=fhir_resource.c.version_id + 100))
    sent = sum(1 for r in outbox(db).values() if r.status == "sent")
    assert sent > 4
    assert retention.purge(db, datetime.now(UTC), 30, 90).sent_rows == 0  # sent just now: kept
    age_everything(db, timedelta(days=20))
    assert retention.purge(db, datetime.now(UTC), 30, 90).sent_rows == 0  # 20 days < 30
    assert retention.purge(db, datetime.now(UTC), 0, 0).sent_rows == 0  # 0: keep everything
    age_everything(db)
    first = retention.purge(db, datetime.now(UTC), 30, 90, batch=2, max_batches=2)
    assert first.sent_rows == 4  # the budget of one run
    rest = retention.purge(db, datetime.now(UTC), 30, 90, batch=2, max_batches=1000)
    assert first.sent_rows + rest.sent_rows == sent
    with db.reader() as conn:
        assert conn.execute(select(func.count()).select_from(sync_outbox)).scalar_one() == 0
        runs = conn.execute(select(func.count()).select_from(sync_run)).scalar_one()
    assert runs == 1  # the destination's newest run stays, however old


def test_the_scheduler_job_reports_counts(app, db):
    from integration.jobs import jobs_for

    job = {s.id: s for s in jobs_for(app)}["sync-retention"]
    assert job.trigger == "interval" and job.trigger_args == {"hours": 1}
    assert job.func(app) == {"sent_rows": 0, "runs": 0}
