"""Fixtures for sync tests: a real FHIR receiver on 127.0.0.1, stored synthetic data, destinations."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from integration.ingest import synthetic
from integration.ingest.service import COLLECTIONS, ingest
from integration.store.schema import fhir_resource, sync_lane, sync_outbox
from integration.sync.destinations import Destination, parse
from tests.sync.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def make_destination(url: str, **fields: Any) -> Destination:
    entry: dict[str, Any] = {
        "name": "test-ehr",
        "kind": "ehr",
        "base_url": url,
        "auth": {"type": "none"},
        "schedule": {"every_seconds": 60},
        "write_mode": "transaction",
        "batch_size": 50,
        "retry": {"base_seconds": 0.05, "max_seconds": 0.2, "max_attempts": 5},
        "breaker": {"failure_threshold": 50, "cooldown_seconds": 1},
        "timeouts": {"connect_seconds": 2, "read_seconds": 5},
    }
    entry.update(fields)
    return parse({"destination": [entry]})[0]


def load(db: Any, ctx: Any, patients: int = 2, sessions: int = 1, seed: int = 3) -> dict[str, Any]:
    batch = synthetic.batch(seed, patients, sessions)
    store(db, ctx, batch)
    return batch


def store(db: Any, ctx: Any, batch: dict[str, Any]) -> None:
    pairs = [(kind, r) for collection, kind in COLLECTIONS.items() for r in batch.get(collection, [])]
    outcomes = ingest(db, pairs, ctx=ctx, source="api")
    assert all(o.status in ("accepted", "unchanged") for o in outcomes), [o.errors for o in outcomes][:3]


def current(db: Any) -> dict[tuple[str, str], tuple[int, bool]]:
    """Every stored resource's current (version, deleted)."""
    t = fhir_resource.c
    with db.reader() as conn:
        rows = conn.execute(select(t.resource_type, t.id, t.version_id, t.deleted))
        return {(r.resource_type, r.id): (r.version_id, r.deleted) for r in rows}


def assert_mirrors(receiver: Receiver, db: Any) -> None:
    """The receiver holds exactly our live resources at our current versions, each version once."""
    for (resource_type, resource_id), (version, deleted) in current(db).items():
        stored = receiver.store.get((resource_type, resource_id))
        if deleted:
            assert stored is None or stored.deleted, (
                resource_type,
                "should be deleted",
                [w for w in receiver.writes if w[1] == f"{resource_type}/{resource_id}"],
                _outbox_rows(db, resource_type, resource_id),
            )
            continue
        assert stored is not None and not stored.deleted, (resource_type, "missing")
        seen = receiver.versions(resource_type, resource_id)
        assert seen[-1] == version and len(seen) == len(set(seen)), (resource_type, seen)


def _outbox_rows(db: Any, resource_type: str, resource_id: str) -> list[tuple[Any, ...]]:
    """The outbox rows of one resource, for a failure message: what was queued, sent, when."""
    from integration.store.schema import sync_outbox

    o = sync_outbox.c
    with db.reader() as conn:
        rows = conn.execute(
            select(o.pk, o.lane, o.version_id, o.deleted, o.status, o.run_id, o.updated_at)
            .where(o.resource_type == resource_type, o.resource_id == resource_id)
            .order_by(o.pk)
        )
        return [tuple(r) for r in rows]


def held_by_retry_after(receiver: Receiver) -> Destination:
    """A destination whose first Bundle (all of a small load) is answered 429 with Retry-After: 300."""
    retry = {"base_seconds": 0.05, "max_seconds": 600, "max_attempts": 5}
    receiver.fail_next(1, 429, {"Retry-After": "300"})
    return make_destination(receiver.url, batch_size=1000, retry=retry)


def vitals_trimmed(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's first session with one vital-sign set fewer: new versions in that patient's lane."""
    session = copy.deepcopy(batch["sessions"][0])
    assert len(session["vitals"]) > 1
    session["vitals"] = session["vitals"][:-1]
    return {"sessions": [session]}


def end_holds(db: Any) -> None:
    """Every pending write due now and no lane held: as if the waits were over."""
    with db.writer() as conn:
        conn.execute(update(sync_outbox).values(next_attempt_at=sync_outbox.c.created_at))
        conn.execute(update(sync_lane).values(held_until=None))
