"""Scheduler jobs: one per enabled EHR destination, on its own schedule; each is a plain sync run."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Flask

from integration.jobs import JobSpec
from integration.sync import service

MISFIRE_GRACE_SECONDS = 300  # a run missed by less than this (leader failover, busy host) still runs once


def sync_destination(app: Flask, name: str) -> dict[str, Any]:
    """Run one destination's sync now (or report the run already running); returns a loggable report."""
    destination = service.configured(app)[name]
    run = service.run_now(
        app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"], destination, {}, "scheduler"
    )
    return {"destination": name, "run_id": run["run_id"], "state": run["state"], "counts": run["counts"]}


def sync_jobs(app: Flask) -> list[JobSpec]:
    specs = []
    for destination in service.configured(app).values():
        if not destination.delivers:
            continue
        trigger, args = destination.schedule.trigger()
        args = {**args, "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}
        specs.append(
            JobSpec(
                f"sync:{destination.name}", partial(sync_destination, name=destination.name), trigger, args
            )
        )
    return specs
