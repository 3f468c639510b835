"""Bulk Data export jobs run in the background: a small thread pool per process, never in the request.

A worker claims a job (a lease in the database), writes its NDJSON files from the stored bytes as the
store was at the job's transactionTime, renewing the lease as it goes (every _BEAT_EVERY rows and
every _BEAT_SECONDS), then completes it in one transaction with its file list. A job whose worker
died is re-claimed once its lease lapses (by the next status poll or the scheduler's
export-maintenance job) and written again from the start; after MAX_ATTEMPTS it is marked failed.
Nothing but a finished worker that still holds the claim can mark a job complete, and a cancelled
job is never completed.

Each attempt claims with its own token (`<worker>#<16 hex>`, kept in export_job.worker) and writes
into its own directory `<export_dir>/<job id>/attempt-<16 hex>`, so a worker that stalled past its
lease and wakes up while another attempt runs can neither write into nor delete the files that
attempt writes: a worker only ever deletes its own attempt's directory. The complete job's files
are in the directory of the attempt its worker column names; the whole job directory goes when the
job row goes (cancel after completion, export-maintenance).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
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
_BEAT_SECONDS = LEASE.total_seconds() / 4  # ... and at least this often while rows keep coming
_ATTEMPT = re.compile(r"#([0-9a-f]{16})$")
_EXTENSION = "horizon.export_runner"
_CREATE_LOCK = threading.Lock()


class Cancelled(Exception):
    """The job was cancelled by its client (or deleted) while this worker wrote it."""


class LeaseLost(Exception):
    """This worker's lease lapsed and another attempt took the job over (or it was failed)."""


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
    """Everything of one job, every attempt's directory included; deleted only with the job row."""
    return Path(settings.export_dir) / job_id


def attempt_directory(settings: Settings, job_id: str, worker: str | None) -> Path:
    """Where the attempt that claimed as `worker` writes; for a complete job, where its files are."""
    found = _ATTEMPT.search(worker or "")
    base = job_directory(settings, job_id)
    return base / f"attempt-{found.group(1)}" if found else base  # jobs written before attempts split


def stop_exports(app: Flask) -> None:
    """On process shutdown: hand running jobs back to the queue and wait for the workers to stop."""
    found = app.extensions.get(_EXTENSION)
    if found is not None:
        found.shutdown(interrupt=True)


def run_job(app: Flask, job_id: str, worker: str, stop: threading.Event | None = None) -> str:
    """Claim and write one job; returns what became of it (complete, failed, cancelled, lease-lost,
    interrupted, not-claimed)."""
    db: Database = app.extensions["horizon.db"]
    settings = _settings(app)
    now = datetime.now(UTC)
    attempt = f"{worker}#{secrets.token_hex(8)}"
    with db.writer() as conn:
        repo = ExportJobRepository(conn)
        if not repo.claim(job_id, attempt, now, LEASE):
            return "not-claimed"
        job = repo.get(job_id)
        assert job is not None
        if job.attempts > MAX_ATTEMPTS:
            repo.fail(
                job_id, f"the export was interrupted {MAX_ATTEMPTS} times; start a new one", now, attempt
            )
            return "failed"
    directory = attempt_directory(settings, job_id, attempt)
    _private_directory(directory)
    sink = NdjsonSink(directory, settings.export_file_max_resources)
    try:
        _write(db, job, sink, attempt, stop or threading.Event())
        files = sink.close()
    except Interrupted:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
        with db.writer() as conn:
            ExportJobRepository(conn).release(job_id, attempt, datetime.now(UTC))
        return "interrupted"
    except (Cancelled, LeaseLost) as exc:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
        return _ended(job_id, exc)
    except Exception:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
        log.exception("export failed", extra={"job": job_id})
        with db.writer() as conn:
            ExportJobRepository(conn).fail(
                job_id, "the export failed on the server", datetime.now(UTC), attempt
            )
        return "failed"
    done = datetime.now(UTC)
    expires = done + timedelta(seconds=settings.export_retention_seconds)
    with db.writer() as conn:
        repo = ExportJobRepository(conn)
        if repo.complete(job_id, attempt, files, done, expires):
            return "complete"
        lost = _why_not_renewed(repo, job_id)
    shutil.rmtree(directory, ignore_errors=True)
    return _ended(job_id, lost)


def _write(db: Database, job: ExportJob, sink: NdjsonSink, worker: str, stop: threading.Event) -> None:
    types = job.type_list
    read = 0
    last_beat = time.monotonic()
    with snapshot_reader(db.engine) as conn:
        scope, patients, compartment_only = _selection(conn, job)
        restricted = not scope.unrestricted  # checked once: the loop below runs for every resource
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
                if read % _BEAT_EVERY == 0 or time.monotonic() - last_beat >= _BEAT_SECONDS:
                    progress = f"{resource_type}: {done}/{len(types)} types, {sink.lines} lines"
                    _beat(db, job.id, worker, progress, stop)
                    last_beat = time.monotonic()
                if compartment_only and row.patient_id is None:
                    continue
                if restricted and not scope.allows(row.resource_type, row.id, row.patient_id):
                    continue
                if row.deleted:
                    sink.write_deleted(resource_type, row.id)
                elif row.content is None:
                    sink.write_error(f"{resource_type}/{row.id} has no stored content")
                else:
                    sink.write_resource(resource_type, row.content)
            sink.finish(resource_type)
            _beat(db, job.id, worker, f"{done + 1}/{len(types)} types, {sink.lines} lines", stop)
            last_beat = time.monotonic()


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
        repo = ExportJobRepository(conn)
        if not repo.renew(job_id, worker, datetime.now(UTC), LEASE, progress):
            raise _why_not_renewed(repo, job_id)


def _why_not_renewed(repo: ExportJobRepository, job_id: str) -> Cancelled | LeaseLost:
    """A client's cancel (or the row gone) versus a lease lost to another attempt."""
    job = repo.get(job_id)
    return Cancelled(job_id) if job is None or job.status == "cancelled" else LeaseLost(job_id)


def _ended(job_id: str, exc: Cancelled | LeaseLost) -> str:
    if isinstance(exc, Cancelled):
        return "cancelled"
    log.warning("export lease lost to another attempt; this attempt's files removed", extra={"job": job_id})
    return "lease-lost"


def _private_directory(attempt: Path) -> None:
    """Create an attempt's directory, its job's and export_dir owner-only (0700): the files hold PHI."""
    job = attempt.parent
    job.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    job.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
    attempt.mkdir(mode=DIRECTORY_MODE)
    for directory in (job, attempt):
        os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask; be exact


def _settings(app: Flask) -> Settings:
    return app.config["HORIZON_SETTINGS"]
