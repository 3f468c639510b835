"""Pull runs: at most one per destination at a time (beside its push runs), recorded like sync runs.

A pull run is a `sync_run` row with options `{"pull": true, ...}` whose active key is the
destination's name + `~pull`; its counts say what was stored, unchanged, skipped, rejected or
ignored (unknown patient), and its errors list each rejected or ignored resource by its EHR
reference, rule and reason, for admins (`GET /admin/api/syncs/<run_id>`).

Pulls honour the destination's pause switch and circuit breaker (see pull_guard.py): the scheduler's
pull job does not start a run while either holds (`pull_guard.pull_blocked`), the admin trigger
answers 409, and a run stops at its next request when either starts to hold meanwhile (count
`stopped`, its reason in the errors).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from integration.settings import Settings
from integration.store.db import Database
from integration.sync.destinations import Destination
from integration.sync.pull import Puller
from integration.sync.pull_guard import GuardedClient
from integration.sync.runs import DONE, FAILED, PULL, RunRepository, execute_in_background, execute_now
from mappings import MappingContext

log = logging.getLogger(__name__)


def start(
    db: Database,
    settings: Settings,
    destination: Destination,
    options: dict[str, Any],
    triggered_by: str | None,
) -> tuple[dict[str, Any], bool]:
    stale = destination.stale_run_seconds(settings.sync_stale_run_seconds)
    with db.writer() as conn:
        return RunRepository(conn).start(
            destination.name,
            {**options, "pull": True},
            triggered_by,
            datetime.now(UTC),
            stale,
            active=destination.name + PULL,
        )


def execute(
    db: Database,
    settings: Settings,
    ctx: MappingContext,
    destination: Destination,
    run_id: str,
    options: dict[str, Any],
    triggered_by: str | None = None,
    fault: Any = None,
) -> dict[str, Any]:
    """Pull every configured type; the run ends done (even with rejections) or failed (it could not go on)."""
    client = GuardedClient(db, destination, settings, run_id)
    state, counts, errors = FAILED, {}, []
    try:
        report = Puller(db, client, destination, ctx, actor=triggered_by, fault=fault, run_id=run_id).run(
            full=bool(options.get("full"))
        )
        counts, errors = dict(report.counts), report.errors
        state = DONE if not report.counts.get("failed_types") else FAILED
        counts["modes"] = report.modes  # type: ignore[assignment]
        return {"state": state, "counts": counts, "errors": errors}
    except Exception as exc:
        log.exception("pull run failed", extra={"destination": destination.name})
        errors = [{"at": datetime.now(UTC).isoformat(), "error": f"pull failed: {type(exc).__name__}"}]
        raise
    finally:
        client.close()
        with db.writer() as conn:
            RunRepository(conn).finish(run_id, state, counts, errors, datetime.now(UTC))


def run_now(
    db: Database,
    settings: Settings,
    ctx: MappingContext,
    destination: Destination,
    options: dict[str, Any],
    triggered_by: str | None,
) -> dict[str, Any]:
    """Start and execute a pull in this thread (scheduler jobs); returns the run, or the running one."""
    run, created = start(db, settings, destination, options, triggered_by)

    def work(run_id: str) -> object:
        return execute(db, settings, ctx, destination, run_id, options, triggered_by)

    return execute_now(db, run, created, work)


def run_in_background(
    db: Database,
    settings: Settings,
    ctx: MappingContext,
    destination: Destination,
    options: dict[str, Any],
    triggered_by: str | None,
) -> tuple[dict[str, Any], bool]:
    """Start a pull and execute it on a daemon thread (admin triggers answer 202 at once)."""
    run, created = start(db, settings, destination, options, triggered_by)

    def work(run_id: str) -> object:
        return execute(db, settings, ctx, destination, run_id, options, triggered_by)

    return execute_in_background(run, created, work, f"pull-{destination.name}")
