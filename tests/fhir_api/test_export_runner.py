"""Export workers: crash resume, giving up, cancellation, a stalled worker, expiry cleanup, file modes."""

import dataclasses
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from integration.fhir_api import export_runner
from integration.fhir_api.export_files import NdjsonSink
from integration.fhir_api.export_runner import MAX_ATTEMPTS, ExportRunner, run_job, runner
from integration.jobs import export_maintenance
from integration.store.exports import ExportJobRepository
from integration.store.schema import export_file, export_job
from tests.fhir_api.test_bulk_export import ASYNC, exported, status_path, stored, token, wait  # noqa: F401


@pytest.fixture
def settings(settings, tmp_path):
    return dataclasses.replace(settings, export_dir=str(tmp_path / "exports"))


@pytest.fixture
def app(app):
    yield app
    runner(app).shutdown()


@pytest.fixture
def queued(client, db, stored, monkeypatch):  # noqa: F811
    """A kicked-off export nobody has started (the process that took it died), and the client's headers."""
    monkeypatch.setattr(ExportRunner, "submit", lambda self, job_id: None)
    headers = token(client, db)
    path = status_path(client.get("/fhir/$export?_type=Patient,Encounter", headers={**headers, **ASYNC}))
    monkeypatch.undo()
    return path.rsplit("/", 1)[1], path, headers


def _crashed(db, job_id, attempts):
    """As left by a worker that died mid-run: running, lease lapsed."""
    past = datetime.now(UTC) - timedelta(minutes=5)
    with db.writer() as conn:
        conn.execute(
            update(export_job)
            .where(export_job.c.id == job_id)
            .values(status="running", worker="dead-host:1:x", lease_until=past, attempts=attempts)
        )


def test_a_job_left_half_done_by_a_crash_is_rewritten_from_the_start(client, db, settings, queued):
    job_id, path, headers = queued
    _crashed(db, job_id, attempts=1)
    directory = Path(settings.export_dir) / job_id
    directory.mkdir(parents=True)
    (directory / "Patient-1.ndjson").write_text('{"resourceType": "Patient", "id": "half-writ')
    polled = client.get(path, headers=headers)  # the poll notices the lapsed lease and restarts it here
    assert polled.status_code == 202
    manifest = wait(client, path, headers).json
    lines = exported(client, manifest, headers)
    assert {t for t, _ in lines} == {"Patient", "Encounter"} and all(i != "half-writ" for _, i in lines)
    with db.reader() as conn:
        assert ExportJobRepository(conn).get(job_id).attempts == 2


def test_a_job_that_keeps_crashing_is_failed_never_complete(app, client, db, queued):
    job_id, path, headers = queued
    _crashed(db, job_id, attempts=MAX_ATTEMPTS)
    assert run_job(app, job_id, "w2") == "failed"
    failed = client.get(path, headers=headers)
    assert failed.status_code == 500 and failed.json["resourceType"] == "OperationOutcome"
    assert "start a new one" in failed.json["issue"][0]["diagnostics"]


def test_a_live_lease_is_not_taken_over(app, db, queued):
    job_id, _, _ = queued
    with db.writer() as conn:
        assert ExportJobRepository(conn).claim(job_id, "w1", datetime.now(UTC), timedelta(minutes=1))
    assert run_job(app, job_id, "w2") == "not-claimed"


def test_cancelling_mid_run_stops_the_worker_and_removes_its_files(app, db, settings, queued, monkeypatch):
    job_id, _, _ = queued
    monkeypatch.setattr(export_runner, "_BEAT_EVERY", 1)
    original = NdjsonSink.write_resource

    def write_then_cancel(self, resource_type, content):
        original(self, resource_type, content)
        with db.writer() as conn:  # what DELETE on the status URL does
            ExportJobRepository(conn).cancel(job_id, datetime.now(UTC))

    monkeypatch.setattr(NdjsonSink, "write_resource", write_then_cancel)
    assert run_job(app, job_id, "w1") == "cancelled"
    assert not [p for p in (Path(settings.export_dir) / job_id).rglob("*") if p.is_file()]
    with db.reader() as conn:
        assert ExportJobRepository(conn).get(job_id).status == "cancelled"


def test_expired_exports_are_deleted_by_the_maintenance_job(app, client, db, settings, queued):
    job_id, path, headers = queued
    assert run_job(app, job_id, "w1") == "complete"
    assert wait(client, path, headers).status_code == 200
    with db.reader() as conn:
        job = ExportJobRepository(conn).get(job_id)
    assert job.expires_at - job.completed_at == timedelta(seconds=settings.export_retention_seconds)
    directory = Path(settings.export_dir) / job_id
    assert any(directory.iterdir())
    assert export_maintenance(app) == {"deleted": 0, "restarted": 0}
    with db.writer() as conn:
        conn.execute(
            update(export_job)
            .where(export_job.c.id == job_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.get(path, headers=headers).status_code == 404  # expired is gone at once
    assert export_maintenance(app) == {"deleted": 1, "restarted": 0}
    assert not directory.exists()
    with db.reader() as conn:
        assert ExportJobRepository(conn).get(job_id) is None


def test_a_stopping_process_hands_its_job_back_to_the_queue(app, db, settings, queued):
    job_id, _, _ = queued
    stopping = threading.Event()
    stopping.set()
    assert run_job(app, job_id, "w1", stopping) == "interrupted"
    with db.reader() as conn:
        job = ExportJobRepository(conn).get(job_id)
    assert (job.status, job.worker, job.attempts) == ("queued", None, 0)
    assert not [p for p in (Path(settings.export_dir) / job_id).rglob("*") if p.is_file()]
    assert run_job(app, job_id, "w2") == "complete"


def test_export_files_and_directories_are_owner_only_whatever_the_umask(app, db, settings, queued):
    job_id, _, _ = queued
    previous = os.umask(0)  # the modes must not depend on the process umask
    try:
        assert run_job(app, job_id, "w1") == "complete"
    finally:
        os.umask(previous)
    root = Path(settings.export_dir)
    directories = [root, *(p for p in root.rglob("*") if p.is_dir())]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(directories) >= 2 and files
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in directories} == {"0o700"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o600"}


def test_a_stalled_worker_that_lost_its_lease_leaves_the_new_attempts_files_alone(
    app, client, db, settings, queued, monkeypatch
):
    """Worker A stalls mid-write past its lease; B takes over and completes; A wakes up and must neither
    write into nor delete B's files, and says it lost the lease (not that the client cancelled)."""
    job_id, path, headers = queued
    monkeypatch.setattr(export_runner, "_BEAT_EVERY", 1)
    paused, resume = threading.Event(), threading.Event()
    original = NdjsonSink.write_resource
    stalled: list[NdjsonSink] = []

    def stall_once(self, resource_type, content):
        if not stalled:
            stalled.append(self)
            paused.set()
            assert resume.wait(30)
        original(self, resource_type, content)

    monkeypatch.setattr(NdjsonSink, "write_resource", stall_once)
    outcome: list[str] = []
    first = threading.Thread(target=lambda: outcome.append(run_job(app, job_id, "worker-a")))
    first.start()
    try:
        assert paused.wait(30)
        with db.writer() as conn:  # A's lease lapses while it is stalled
            conn.execute(
                update(export_job)
                .where(export_job.c.id == job_id)
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert run_job(app, job_id, "worker-b") == "complete"
    finally:
        resume.set()
        first.join(30)
    assert outcome == ["lease-lost"]
    assert not stalled[0].directory.exists()  # A removed its own attempt's directory, nothing else
    with db.reader() as conn:
        job = ExportJobRepository(conn).get(job_id)
    assert job.status == "complete" and job.worker.startswith("worker-b#")
    manifest = wait(client, path, headers).json
    lines = exported(client, manifest, headers)
    assert {t for t, _ in lines} == {"Patient", "Encounter"}
    assert sum(e["count"] for e in manifest["output"]) == len(lines)


def test_the_lease_is_renewed_by_elapsed_time_as_well_as_by_rows(app, db, queued, monkeypatch):
    job_id, _, _ = queued
    renewals: list[str] = []
    original = ExportJobRepository.renew

    def counted(self, *args, **kwargs):
        renewals.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ExportJobRepository, "renew", counted)
    monkeypatch.setattr(export_runner, "_BEAT_EVERY", 10**9)
    monkeypatch.setattr(export_runner, "_BEAT_SECONDS", 3600)
    assert run_job(app, job_id, "w1") == "complete"
    per_type = len(renewals)
    assert per_type == 2  # Patient, Encounter: one renewal after each type, none by rows or time
    renewals.clear()
    with db.writer() as conn:  # as if queued again: its first files forgotten
        conn.execute(delete(export_file).where(export_file.c.job_id == job_id))
        conn.execute(update(export_job).where(export_job.c.id == job_id).values(status="queued"))
    monkeypatch.setattr(export_runner, "_BEAT_SECONDS", 0)
    assert run_job(app, job_id, "w2") == "complete"
    assert len(renewals) > per_type + 5  # every row, as time has always run out
