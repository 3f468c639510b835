"""Scheduler jobs: one sync per enabled EHR destination on its schedule, and one pull per destination with a
`[destination.pull]` table (on the pull's own schedule, else the destination's); each is a plain run.
`purge_history` (job `sync-retention`, hourly, registered in integration/jobs.py) deletes delivery history
past its retention (retention.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from flask import Flask

from integration.jobs import JobSpec
from integration.sync import pull_service, retention, service
from integration.sync.pull_guard import pull_blocked

MISFIRE_GRACE_SECONDS = 300  # a run missed by less than this (leader failover, busy host) still runs once


def sync_destination(app: Flask, name: str) -> dict[str, Any]:
    """Run one destination's sync now (or report the run already running); returns a loggable report."""
    destination = service.configured(app)[name]
    run = service.run_now(
        app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"], destination, {}, "scheduler"
    )
    return {"destination": name, "run_id": run["run_id"], "state": run["state"], "counts": run["counts"]}


def pull_destination(app: Flask, name: str) -> dict[str, Any]:
    """Pull from one destination now (or report the pull already running); returns a loggable report."""
    destination = service.configured(app)[name]
    why = pull_blocked(app.extensions["horizon.db"], destination)
    if why is not None:  # paused or circuit open: no run at all (it would stop at its first request)
        return {"destination": name, "skipped": why[1]}
    run = pull_service.run_now(
        app.extensions["horizon.db"],
        app.config["HORIZON_SETTINGS"],
        app.extensions["horizon.mapping"],
        destination,
        {},
        "scheduler",
    )
    return {"destination": name, "run_id": run["run_id"], "state": run["state"], "counts": run["counts"]}


def purge_history(app: Flask) -> dict[str, Any]:
    """Delete sent outbox rows and finished runs past their retention (see retention.py); counts only."""
    settings = app.config["HORIZON_SETTINGS"]
    report = retention.purge(
        app.extensions["horizon.db"],
        datetime.now(UTC),
        settings.sync_sent_retention_days,
        settings.sync_run_retention_days,
    )
    return report.as_dict()


def sync_jobs(app: Flask) -> list[JobSpec]:
    specs = []
    options = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}
    for destination in service.configured(app).values():
        if destination.delivers:
            trigger, args = destination.schedule.trigger()
            job = partial(sync_destination, name=destination.name)
            specs.append(JobSpec(f"sync:{destination.name}", job, trigger, {**args, **options}))
        if destination.pulls:
            assert destination.pull is not None
            trigger, args = (destination.pull.schedule or destination.schedule).trigger()
            job = partial(pull_destination, name=destination.name)
            specs.append(JobSpec(f"pull:{destination.name}", job, trigger, {**args, **options}))
    return specs
