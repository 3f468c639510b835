"""Sender edge cases against a real receiver on 127.0.0.1, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from integration.store.schema import sync_outbox
from integration.sync.engine import DeliveryEngine
from integration.sync.outbox import OutboxRepository, OutboxWrite
from integration.sync.state import StateRepository
from tests.sync.conftest import make_destination


def request(lane: str, key: str, path: str) -> OutboxWrite:
    body = orjson.dumps({"resourceType": "Patient", "id": key}).decode()
    return OutboxWrite.request(
        lane=lane, dedupe_key=key, method="PUT", path=path, body=body, content_type="application/fhir+json"
    )


@pytest.mark.parametrize("mode", ["individual", "transaction"])
def test_an_entry_that_cannot_make_a_url_is_a_dead_letter_and_the_batch_goes_on(db, settings, receiver, mode):
    """A path outside the destination's base URL (or an id such as `..`) can never be sent: that entry
    becomes a dead letter saying why, nothing goes out for it, and the rest of its batch is sent."""
    writes = [
        request("a", "escape", "../../admin/config"),
        request("a", "doc-1", "Patient/doc-1"),
        request("b", "elsewhere", "https://other.example/fhir/Patient/x"),
        request("b", "doc-2", "Patient/doc-2"),
    ]
    if mode == "individual":
        writes.append(OutboxWrite.resource("Patient", "..", 2, True, "c"))
    with db.writer() as conn:
        OutboxRepository(conn).enqueue("test-ehr", writes, datetime.now(UTC))
    destination = make_destination(receiver.url, write_mode=mode)
    counts = DeliveryEngine(db, settings, destination).deliver()
    bad = len(writes) - 2
    assert (counts.sent, counts.dead, counts.retrying) == (2, bad, 0)
    assert sorted(path for _m, path, _s in receiver.requests) == [
        "/fhir/Patient/doc-1",
        "/fhir/Patient/doc-2",
    ]
    t = sync_outbox.c
    with db.reader() as conn:
        rows = {r.dedupe_key: r for r in conn.execute(select(t.dedupe_key, t.status, t.last_error))}
        breaker = StateRepository(conn).get("test-ehr").breaker
    assert rows["doc-1"].status == rows["doc-2"].status == "sent"
    dead = [r for r in rows.values() if r.status == "dead"]
    assert len(dead) == bad and all(r.last_error.startswith("cannot send: ") for r in dead)
    assert "relative to its base URL" in rows["escape"].last_error
    assert breaker.failures == 0  # our data's fault, not the partner's health
