"""Repository of sync runs: one running run per destination at most, with live counts and errors.

`active_destination` holds the destination's name only while a run is running; its unique
constraint makes a concurrent second start fail, and the caller gets the running run instead. A run
whose worker died stops heart-beating and is marked abandoned by the next start once its heartbeat is
older than `Destination.stale_run_seconds` (setting `sync_stale_run_seconds`, never below twice the
destination's lane lease). Live runs heartbeat after every delivered batch, every change-feed chunk
moved and every pull request, so that bound is never reached by a run that is only slow.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from integration.store.db import Database
from integration.store.schema import sync_run

RUNNING, DONE, FAILED, ABANDONED = "running", "done", "failed", "abandoned"
MAX_ERRORS = 50
PULL = "~pull"  # suffix of the active key of a destination's pull run


def _row(row: Any) -> dict[str, Any]:
    out = {str(k): v for k, v in row._mapping.items()}  # plain str keys (orjson refuses subclasses)
    for key in ("options", "counts", "errors"):
        out[key] = orjson.loads(out[key])
    out.pop("active_destination", None)
    return out


class RunRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def running(self, destination: str) -> dict[str, Any] | None:
        """The running run holding `destination` (a name, or a name + PULL for its pull runs)."""
        row = self._conn.execute(select(sync_run).where(sync_run.c.active_destination == destination)).first()
        return _row(row) if row else None

    def start(
        self,
        destination: str,
        options: dict[str, Any],
        triggered_by: str | None,
        now: datetime,
        stale_after: float,
        active: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(run, True) for a new run, or (the running run, False) when one is already running.

        `active` is what only one running run may hold: the destination's name by default; a pull
        holds name + PULL, so a destination's pull and push runs do not wait for each other.
        """
        active = active or destination
        current = self.running(active)
        if current is not None:
            if current["heartbeat_at"] >= now - timedelta(seconds=stale_after):
                return current, False
            self.finish(current["run_id"], ABANDONED, current["counts"], current["errors"], now)
        run_id = uuid.uuid4().hex
        values = {
            "run_id": run_id,
            "destination": destination,
            "active_destination": active,
            "state": RUNNING,
            "options": orjson.dumps(options).decode(),
            "counts": "{}",
            "errors": "[]",
            "triggered_by": triggered_by,
            "started_at": now,
            "heartbeat_at": now,
        }
        try:
            with self._conn.begin_nested():
                self._conn.execute(insert(sync_run).values(**values))
        except IntegrityError:
            current = self.running(active)
            if current is None:
                raise
            return current, False
        return self.get(run_id) or {}, True

    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(select(sync_run).where(sync_run.c.run_id == run_id)).first()
        return _row(row) if row else None

    def last(self, destination: str, state: str | None = None) -> dict[str, Any] | None:
        t = sync_run.c
        query = select(sync_run).where(t.destination == destination).order_by(t.started_at.desc()).limit(1)
        if state:
            query = query.where(t.state == state)
        row = self._conn.execute(query).first()
        return _row(row) if row else None

    def heartbeat(
        self, run_id: str, counts: dict[str, int], errors: list[dict[str, Any]], now: datetime
    ) -> None:
        self._conn.execute(
            update(sync_run)
            .where(sync_run.c.run_id == run_id, sync_run.c.state == RUNNING)
            .values(
                counts=orjson.dumps(counts).decode(),
                errors=orjson.dumps(errors[-MAX_ERRORS:]).decode(),
                heartbeat_at=now,
            )
        )

    def touch(self, run_id: str, now: datetime) -> None:
        """Heartbeat only (counts unchanged): a live run doing long work between batches says so."""
        self._conn.execute(
            update(sync_run)
            .where(sync_run.c.run_id == run_id, sync_run.c.state == RUNNING)
            .values(heartbeat_at=now)
        )

    def finish(
        self, run_id: str, state: str, counts: dict[str, int], errors: list[dict[str, Any]], now: datetime
    ) -> None:
        self._conn.execute(
            update(sync_run)
            .where(sync_run.c.run_id == run_id, sync_run.c.state == RUNNING)
            .values(
                state=state,
                active_destination=None,
                counts=orjson.dumps(counts).decode(),
                errors=orjson.dumps(errors[-MAX_ERRORS:]).decode(),
                heartbeat_at=now,
                finished_at=now,
            )
        )


Work = Callable[[str], object]  # executes the run with this id; records its own end on the run


def execute_now(db: Database, run: dict[str, Any], created: bool, work: Work) -> dict[str, Any]:
    """Execute a just-started run in this thread (scheduler jobs): the run as it ended, or the running one."""
    if created:
        with contextlib.suppress(Exception):  # recorded on the run and logged by the work
            work(run["run_id"])
        with db.reader() as conn:
            run = RunRepository(conn).get(run["run_id"]) or run
    return run


def execute_in_background(
    run: dict[str, Any], created: bool, work: Work, thread_name: str
) -> tuple[dict[str, Any], bool]:
    """Execute a just-started run on a daemon thread (admin triggers answer 202 at once)."""
    if created:

        def _work() -> None:
            with contextlib.suppress(Exception):  # recorded on the run and logged by the work
                work(run["run_id"])

        threading.Thread(target=_work, name=thread_name, daemon=True).start()
    return run, created
