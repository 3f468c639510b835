"""Scheduled jobs: plain functions of the app returning a report; the scheduler only calls them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from integration.auth.smart_clients import SmartClientRepository
from integration.store.db import is_sqlite


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


def jobs_for(app: Flask) -> list[JobSpec]:
    """The jobs this deployment runs (sync, summaries and export cleanup join this list)."""
    specs: list[JobSpec] = [
        JobSpec("smart-credentials-purge", purge_expired_smart_credentials, "interval", {"minutes": 15})
    ]
    if is_sqlite(app.extensions["horizon.db"].engine):
        specs.append(JobSpec("sqlite-checkpoint", checkpoint_sqlite, "interval", {"minutes": 5}))
    from integration.sync.jobs import sync_jobs  # sync imports JobSpec from here

    return specs + sync_jobs(app)
