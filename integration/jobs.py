"""Scheduled jobs: plain functions of the app returning a report; the scheduler only calls them."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from integration.auth.smart_clients import SmartClientRepository
from integration.fhir_api.export_runner import job_directory, runner
from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import is_sqlite
from integration.store.exports import ExportJobRepository


@dataclass(frozen=True)
class JobSpec:
    """One job: an id, the function, and the APScheduler trigger with its arguments."""

    id: str
    func: Callable[[Flask], dict[str, Any]]
    trigger: str
    trigger_args: dict[str, Any] = field(default_factory=dict)


def checkpoint_sqlite(app: Flask) -> dict[str, Any]:
    """Fold the SQLite write-ahead log back into the database so it stays small under load."""
    engine = app.extensions["horizon.db"].engine
    with engine.connect() as conn:
        busy, log_frames, checkpointed = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        conn.exec_driver_sql("PRAGMA optimize")
    return {"busy": busy, "wal_frames": log_frames, "checkpointed": checkpointed}


def purge_expired_smart_credentials(app: Flask) -> dict[str, Any]:
    """Forget used client-assertion ids and access tokens once they have expired (both are useless then)."""
    with app.extensions["horizon.db"].writer() as conn:
        removed = SmartClientRepository(conn).purge_expired(datetime.now(UTC))
    return {"removed": removed}


class _AppIntake:
    """The drop folder's way into the store: the API's intake, the audit entry committed with the records."""

    def __init__(self, app: Flask) -> None:
        self._db = app.extensions["horizon.db"]
        self._ctx = app.extensions["horizon.mapping"]

    def ingest(self, pairs: list[tuple[str, dict]], source: str, audit: AuditEntry) -> list[Any]:
        from integration.ingest.service import ingest

        return ingest(self._db, pairs, ctx=self._ctx, source=source, audit=audit, audit_outcome=lambda _: 200)

    def refused(self, audit: AuditEntry) -> None:
        with self._db.writer() as conn:
            AuditRepository(conn).record(audit)


def poll_drop_folder(app: Flask) -> dict[str, Any]:
    """Take the exports waiting in the drop folder's inbox (see integration/ingest/drop_folder.py)."""
    from integration.ingest import drop_folder

    settings = app.config["HORIZON_SETTINGS"]
    taken = drop_folder.poll(
        Path(settings.drop_folder), _AppIntake(app), min_age=settings.drop_folder_min_age_seconds
    )
    return {"taken": len(taken), "by_folder": dict(Counter(t.folder for t in taken))}


# Cancelled and failed exports keep their row (answering 404/500) this long before it goes too.
KEEP_ENDED_EXPORTS = timedelta(hours=1)
QUEUED_GRACE = timedelta(seconds=30)


def export_maintenance(app: Flask) -> dict[str, Any]:
    """Delete expired $export files (and ended jobs), and restart jobs whose worker died."""
    now = datetime.now(UTC)
    settings = app.config["HORIZON_SETTINGS"]
    db = app.extensions["horizon.db"]
    with db.writer() as conn:
        repo = ExportJobRepository(conn)
        ended = repo.finished_before(now, KEEP_ENDED_EXPORTS)
        for job_id in ended:
            shutil.rmtree(job_directory(settings, job_id), ignore_errors=True)
        repo.delete(ended)
    with db.reader() as conn:
        stale = ExportJobRepository(conn).stale(now, QUEUED_GRACE)
    for job_id in stale:
        runner(app).submit(job_id)
    return {"deleted": len(ended), "restarted": len(stale)}


def jobs_for(app: Flask) -> list[JobSpec]:
    """The jobs this deployment runs (sync, summaries and export cleanup join this list)."""
    specs: list[JobSpec] = [
        JobSpec("smart-credentials-purge", purge_expired_smart_credentials, "interval", {"minutes": 15}),
        JobSpec("export-maintenance", export_maintenance, "interval", {"minutes": 1}),
    ]
    settings = app.config["HORIZON_SETTINGS"]
    if settings.drop_folder:
        every = {"seconds": settings.drop_folder_poll_seconds}
        specs.append(JobSpec("drop-folder", poll_drop_folder, "interval", every))
    if is_sqlite(app.extensions["horizon.db"].engine):
        specs.append(JobSpec("sqlite-checkpoint", checkpoint_sqlite, "interval", {"minutes": 5}))
    # Imported here: the summaries' and sync's jobs modules build on JobSpec above.
    from integration.summaries.jobs import configured_referrers, summary_job_specs
    from integration.sync.jobs import purge_history, sync_jobs

    specs.append(JobSpec("sync-retention", purge_history, "interval", {"hours": 1}))
    specs.extend(summary_job_specs(configured_referrers(app)))
    return specs + sync_jobs(app)
