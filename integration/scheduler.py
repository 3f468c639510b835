"""The job scheduler, with exactly one leader across processes and hosts (a lease in the database).

Every scheduler process campaigns for the lease; only the holder runs APScheduler. The holder
renews the lease well before it expires; if it dies, another process takes over after the lease
runs out. A job also checks the lease right before it runs, so a leader that lost its lease
while paused (GC, suspended VM) does not run a job the new leader runs too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from integration.jobs import JobSpec, jobs_for
from integration.store.leases import LeaseRepository

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler-leader"
MISFIRE_GRACE_SECONDS = 60


class SchedulerService:
    def __init__(self, app: Flask, jobs: list[JobSpec] | None = None) -> None:
        self.app = app
        settings = app.config["HORIZON_SETTINGS"]
        self.ttl = float(settings.scheduler_lease_seconds)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.jobs = jobs if jobs is not None else jobs_for(app)
        self._db = app.extensions["horizon.db"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduler: BackgroundScheduler | None = None
        self.runs: dict[str, int] = {}

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._campaign, name="scheduler-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.ttl)
        self._step_down()
        try:
            with self._db.writer() as conn:
                LeaseRepository(conn).release(LEASE_NAME, self.holder)
        except Exception:
            log.exception("could not release the scheduler lease; it expires by itself")

    def _campaign(self) -> None:
        interval = max(self.ttl / 3, 0.2)
        while not self._stop.is_set():
            held = self._try_lease()
            if held and self._scheduler is None:
                self._lead()
            elif not held and self._scheduler is not None:
                log.warning("scheduler lease lost; stepping down")
                self._step_down()
            self._stop.wait(interval)

    def _try_lease(self) -> bool:
        try:
            with self._db.writer() as conn:
                return LeaseRepository(conn).acquire(LEASE_NAME, self.holder, self.ttl)
        except Exception:
            log.exception("scheduler lease check failed")
            return False

    def _holds_lease(self) -> bool:
        with self._db.reader() as conn:
            return LeaseRepository(conn).holder(LEASE_NAME) == self.holder

    def _lead(self) -> None:
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )
        for spec in self.jobs:
            scheduler.add_job(self._run_job, spec.trigger, args=[spec], id=spec.id, **spec.trigger_args)
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler leader", extra={"jobs": [s.id for s in self.jobs]})

    def _step_down(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    def _run_job(self, spec: JobSpec) -> dict[str, Any] | None:
        if not self._holds_lease():
            log.warning("skipping job: no longer the scheduler leader", extra={"job": spec.id})
            return None
        started = time.perf_counter()
        with self.app.app_context():
            try:
                report = spec.func(self.app)
            except Exception:
                log.exception("job failed", extra={"job": spec.id})
                return None
        self.runs[spec.id] = self.runs.get(spec.id, 0) + 1
        log.info(
            "job done",
            extra={"job": spec.id, "report": report, "ms": round((time.perf_counter() - started) * 1000)},
        )
        return report
