"""Bulk Data export jobs run in the background: a small thread pool per process, never in the request.

A worker claims a job (a lease in the database), writes its NDJSON files from the stored bytes as the
store was at the job's transactionTime, renewing the lease as it goes, then completes it in one
transaction with its file list. A job whose worker died is re-claimed once its lease lapses (by the
next status poll or the scheduler's export-maintenance job) and written again from the start; after
MAX_ATTEMPTS it is marked failed. Nothing but a finished worker that still holds the claim can mark
a job complete, and a cancelled job is never completed.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import Connection

from integration.fhir_api.compartment import UNRESTRICTED, PatientScope, group_members, member_ids
from integration.fhir_api.export_files import DIRECTORY_MODE, NdjsonSink
from integration.settings import Settings
from integration.store.db import Database
from integration.store.exports import ExportJob, ExportJobRepository
from integration.store.snapshot import resource_at, rows_as_of, snapshot_reader

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 3
_BEAT_EVERY = 5000  # rows read between lease renewals and cancellation checks
_EXTENSION = "horizon.export_runner"
_CREATE_LOCK = threading.Lock()


class Cancelled(Exception):
    """The job was cancelled (or taken over) while this worker wrote it."""


class Interrupted(Exception):
    """This process is stopping: the job goes back to the queue for any process to take."""


class ExportRunner:
    """The process's export workers; threads start on the first job, not when the app is created."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def submit(self, job_id: str) -> None:
        """Run the job here unless this process already has it queued."""
        with self._lock:
            if job_id in self._pending:
                return
            self._pending.add(job_id)
            if self._executor is None:
                workers = max(1, _settings(self.app).export_workers)
                self._executor = ThreadPoolExecutor(workers, thread_name_prefix="export")
            self._executor.submit(self._run, job_id)

    def shutdown(self, *, interrupt: bool = False) -> None:
        """Wait for the workers; with `interrupt`, running jobs are handed back to the queue first."""
        if interrupt:
            self.stopping.set()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _run(self, job_id: str) -> None:
        try:
            run_job(self.app, job_id, self.worker_id, self.stopping)
        except Exception:
            log.exception("export worker failed")
        finally:
            with self._lock:
                self._pending.discard(job_id)


def runner(app: Flask) -> ExportRunner:
    with _CREATE_LOCK:
        found = app.extensions.get(_EXTENSION)
        if found is None:
            found = app.extensions[_EXTENSION] = ExportRunner(app)
        return found


def job_directory(settings: Settings, job_id: str) -> Path:
    return Path(settings.export_dir) / job_id


def stop_exports(app: Flask) -> None:
    """On process shutdown: hand running jobs back to the queue and wait for the workers to stop."""
    found = app.extensions.get(_EXTENSION)
    if found is not None:
        found.shutdown(interrupt=True)


def run_job(app: Flask, job_id: str, worker: str, stop: threading.Event | None = None) -> str:
    """Claim and write one job; returns what became of it (complete, failed, cancelled, interrupted,
    not-claimed)."""
    db: Database = app.extensions["horizon.db"]
    settings = _settings(app)
    now = datetime.now(UTC)
    with db.writer() as conn:
        repo = ExportJobRepository(conn)
        if not repo.claim(job_id, worker, now, LEASE):
            return "not-claimed"
        job = repo.get(job_id)
        assert job is not None
        if job.attempts > MAX_ATTEMPTS:
            repo.fail(
                job_id, f"the export was interrupted {MAX_ATTEMPTS} times; start a new one", now, worker
            )
            return "failed"
    directory = job_directory(settings, job_id)
    shutil.rmtree(directory, ignore_errors=True)  # a previous attempt's partial files
    _private_directory(directory)
    sink = NdjsonSink(directory, settings.export_file_max_resources)
    try:
        _write(db, job, sink, worker, stop or threading.Event())
        files = sink.close()
    except Interrupted:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
        with db.writer() as conn:
            ExportJobRepository(conn).release(job_id, worker, datetime.now(UTC))
        return "interrupted"
    except Cancelled:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
        return "cancelled"
    except Exception:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
        log.exception("export failed", extra={"job": job_id})
        with db.writer() as conn:
            ExportJobRepository(conn).fail(
                job_id, "the export failed on the server", datetime.now(UTC), worker
            )
        return "failed"
    done = datetime.now(UTC)
    expires = done + timedelta(seconds=settings.export_retention_seconds)
    with db.writer() as conn:
        completed = ExportJobRepository(conn).complete(job_id, worker, files, done, expires)
    if not completed:
        shutil.rmtree(directory, ignore_errors=True)
        return "cancelled"
    return "complete"


def _write(db: Database, job: ExportJob, sink: NdjsonSink, worker: str, stop: threading.Event) -> None:
    types = job.type_list
    read = 0
    with snapshot_reader(db.engine) as conn:
        scope, patients, compartment_only = _selection(conn, job)
        for done, resource_type in enumerate(types):
            rows = rows_as_of(
                conn,
                resource_type,
                job.transaction_time,
                since=job.since,
                patients=patients,
                with_deleted=job.since is not None,
            )
            for row in rows:
                read += 1
                if read % _BEAT_EVERY == 0:
                    progress = f"{resource_type}: {done}/{len(types)} types, {sink.lines} lines"
                    _beat(db, job.id, worker, progress, stop)
                if compartment_only and row.patient_id is None:
                    continue
                if not scope.allows(row.resource_type, row.id, row.patient_id):
                    continue
                if row.deleted:
                    sink.write_deleted(resource_type, row.id)
                elif row.content is None:
                    sink.write_error(f"{resource_type}/{row.id} has no stored content")
                else:
                    sink.write_resource(resource_type, row.content)
            sink.finish(resource_type)
            _beat(db, job.id, worker, f"{done + 1}/{len(types)} types, {sink.lines} lines", stop)


def _selection(conn: Connection, job: ExportJob) -> tuple[PatientScope, frozenset[str] | None, bool]:
    """What the job may write: (visibility rule, patients to read or None for all, compartment only).

    A Group-restricted client sees the patients in its Group both at transactionTime and now, so a
    patient taken out of the Group meanwhile is not exported to it.
    """
    at = job.transaction_time
    scope = UNRESTRICTED
    if job.scope_group_id is not None:
        allowed = _members_at(conn, job.scope_group_id, at) & group_members(conn, job.scope_group_id)
        scope = PatientScope(allowed, job.scope_group_id)
    if job.kind == "group":
        members = _members_at(conn, job.group_id or "", at)
        if scope.patients is not None:
            members &= scope.patients
        return scope, members, True
    if job.kind == "patient":
        return scope, scope.patients, True
    return scope, None, False


def _members_at(conn: Connection, group_id: str, at: datetime) -> frozenset[str]:
    row = resource_at(conn, "Group", group_id, at)
    if row is None or row.deleted or not row.content:
        return frozenset()
    return member_ids(row.content)


def _beat(db: Database, job_id: str, worker: str, progress: str, stop: threading.Event) -> None:
    if stop.is_set():
        raise Interrupted(job_id)
    with db.writer() as conn:
        if not ExportJobRepository(conn).renew(job_id, worker, datetime.now(UTC), LEASE, progress):
            raise Cancelled(job_id)


def _private_directory(directory: Path) -> None:
    """Create `directory` and export_dir above it owner-only (0700): export files hold PHI."""
    directory.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    directory.mkdir(mode=DIRECTORY_MODE)
    os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask; be exact


def _settings(app: Flask) -> Settings:
    return app.config["HORIZON_SETTINGS"]
