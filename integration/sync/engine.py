"""The delivery engine of one destination: claim lanes from the outbox, send, record each entry's outcome.

`Sender` sends a claimed batch by write mode and judges each entry (`retry.classify`); here,
temporary failures wait (backoff, or the server's Retry-After, capped) and hold their lane back,
exhausted or permanent ones become dead letters with the server's answer, and the circuit breaker
follows the health of each exchange. Logs carry counts and statuses only: no ids, URLs, bodies or tokens.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from integration.settings import Settings
from integration.store.db import Database
from integration.store.schema import sync_lane, sync_outbox
from integration.sync import retry
from integration.sync.breaker import HALF_OPEN
from integration.sync.capabilities import choose, discover, needs_discovery
from integration.sync.client import FhirClient
from integration.sync.destinations import Destination
from integration.sync.outbox import OutboxItem, OutboxRepository
from integration.sync.runs import RunRepository
from integration.sync.sender import Result, Sender, Signer
from integration.sync.state import DestinationState, StateRepository

log = logging.getLogger(__name__)
GROUP_MAX = 4  # batches claimed, sent and recorded together at most (deliver)


@dataclass
class Counts:
    sent: int = 0
    unchanged: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "unchanged": self.unchanged, "retrying": self.retrying, "dead": self.dead}


class DeliveryEngine:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        destination: Destination,
        *,
        client: FhirClient | None = None,
        lease_seconds: float | None = None,
        rng: random.Random | None = None,
        after_send: Callable[[], None] | None = None,
        signers: Mapping[str, Signer] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.destination = destination
        self.client = client or FhirClient(destination, settings)
        self.holder = uuid.uuid4().hex
        self.lease_seconds = lease_seconds or destination.lease_seconds
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.after_send = after_send  # test hook: runs between send and recording (crash tests)
        self.sender = Sender(
            db, self.client, destination, f"{settings.clinic_base_url.rstrip('/')}/sid/", signers
        )

    # --- capabilities --------------------------------------------------------------------------
    def capabilities(self, refresh: bool = False) -> dict[str, Any] | None:
        """What was learned about the server; fetched on first use when the mode depends on it."""
        with self.db.reader() as conn:
            state = StateRepository(conn).get(self.destination.name)
        if state.capabilities is not None and not refresh:
            return state.capabilities
        if not refresh and not needs_discovery(self.destination):
            return None
        facts = discover(self.client)
        with self.db.writer() as conn:
            StateRepository(conn).set_capabilities(self.destination.name, facts, datetime.now(UTC))
        return facts

    # --- delivery ------------------------------------------------------------------------------
    def deliver(
        self,
        run_id: str | None = None,
        *,
        lane: str | None = None,
        linger: float = 0.0,
        max_batches: int | None = None,
        counts: Counts | None = None,
    ) -> Counts:
        """Deliver due outbox rows until none is due (or due within `linger` seconds).

        One group of batches is in flight on a sender thread while this thread records the group
        before it and claims the next one (one transaction), so the partner's time and ours overlap.
        A group is sent batch after batch (`send_group`); it starts at one batch and doubles up to
        GROUP_MAX, so a long backlog pays one commit per GROUP_MAX batches (a commit's flush costs
        about as much as a local partner's answer) while a short one is recorded batch by batch.
        The next group may hold later rows of an in-flight lane; they go out only after that lane's
        outcome is known and allows it (`_still_clear`), so a lane's writes keep their order and a
        failing exchange sends nothing more before the breaker has judged it. Exchanges never overlap.
        """
        counts = counts or Counts()
        mode, conditional = choose(self.destination, self.capabilities())
        batches = 0
        group = 1  # batches per claim: doubles up to GROUP_MAX while the backlog lasts
        deadline = time.monotonic() + linger
        done: tuple[list[Result], bool] | None = None  # sent, not yet recorded
        flight: _Flight | None = None  # being sent
        with ThreadPoolExecutor(1, thread_name_prefix=f"sync-send-{self.destination.name}") as pool:
            while True:
                now = datetime.now(UTC)
                may_send = max_batches is None or batches < max_batches
                in_flight = flight.items if flight is not None else []
                # One transaction records the last batch, reads the switches and claims the next batch.
                with self.db.writer() as conn:
                    state = self._record(conn, done, run_id, counts, in_flight)
                    done = None
                    allowed = state.breaker.allows(now, self.destination.breaker)
                    probe = state.breaker.current(now, self.destination.breaker) == HALF_OPEN
                    items: list[OutboxItem] = []
                    if may_send and allowed and not state.paused and not (probe and flight is not None):
                        size = 1 if probe else self.destination.batch_size
                        if not probe:
                            size *= min(group, max_batches - batches) if max_batches is not None else group
                        items = OutboxRepository(conn).claim(
                            self.destination.name,
                            self.holder,
                            lanes=size,
                            items=size,
                            lease_seconds=self.lease_seconds,
                            now=now,
                            lane=lane,
                            exclude=[i.pk for i in in_flight],
                        )
                        items = one_entry_per_resource(items)
                claimed_at = time.monotonic()
                if flight is not None:
                    done = flight.future.result()
                    if self.after_send is not None:
                        self.after_send()
                    items = self._still_clear(items, flight.items, done, claimed_at)
                    flight = None
                if items:
                    batches += -(-len(items) // self.destination.batch_size)
                    group = min(group * 2, GROUP_MAX)
                    until = claimed_at + self.lease_seconds / 4
                    future = pool.submit(self.send_group, items, mode, conditional, until)
                    flight = _Flight(items, future)
                    continue
                if done is not None:
                    continue  # record it, then claim again
                if not allowed:
                    counts.errors.append({"at": now.isoformat(), "error": "circuit open; delivery paused"})
                if state.paused or not allowed or not may_send:
                    break
                if not self._wait_for_due(deadline, lane):
                    break
        return counts

    def send_group(
        self, items: list[OutboxItem], mode: str, conditional: bool, until: float
    ) -> tuple[list[Result], bool]:
        """Send a claimed group batch after batch (sender thread); stop at the first unhealthy exchange.

        A lane with a write to retry sends nothing more of the group, and no batch starts once the
        lease is a quarter gone (`until`): what is left unsent stays pending, in order, and holds its
        lane in `_still_clear` like a write to retry.
        """
        size = self.destination.batch_size
        results: list[Result] = []
        waiting: set[str] = set()
        for start in range(0, len(items), size):
            if start and time.monotonic() > until:
                break
            batch = [i for i in items[start : start + size] if i.lane not in waiting]
            if not batch:
                continue
            sent, healthy = self.sender.send(batch, mode, conditional)
            results.extend(sent)
            if not healthy:
                return results, False
            answered = {r.item.pk for r in sent if r.verdict is not retry.Verdict.RETRY}
            waiting.update(i.lane for i in batch if i.pk not in answered)
        return results, True

    def _still_clear(
        self,
        items: list[OutboxItem],
        in_flight: list[OutboxItem],
        done: tuple[list[Result], bool],
        claimed_at: float,
    ) -> list[OutboxItem]:
        """What of a group claimed while the one before was in flight may go now that its outcome is in.

        Nothing after an unhealthy exchange (the breaker judges it first) or when the wait ate into
        the lease; no row of a lane whose earlier write must be retried or was left unsent (it stays
        pending, in order).
        """
        results, healthy = done
        if not healthy or time.monotonic() - claimed_at > self.lease_seconds / 4:
            return []
        answered = {r.item.pk for r in results if r.verdict is not retry.Verdict.RETRY}
        waiting = {i.lane for i in in_flight if i.pk not in answered}
        return [i for i in items if i.lane not in waiting] if waiting else items

    def _wait_for_due(self, deadline: float, lane: str | None) -> bool:
        """Sleep until the next pending row falls due (and its lane's retry hold is over), if that is
        before the deadline."""
        t, held = sync_outbox.c, sync_lane.c
        due_at = case((held.held_until > t.next_attempt_at, held.held_until), else_=t.next_attempt_at)
        with self.db.reader() as conn:
            query = (
                select(func.min(due_at))
                .select_from(
                    sync_outbox.outerjoin(
                        sync_lane, and_(held.destination == t.destination, held.lane == t.lane)
                    )
                )
                .where(t.destination == self.destination.name, t.status == "pending")
            )
            if lane is not None:
                query = query.where(t.lane == lane)
            due = conn.execute(query).scalar()
        if due is None:
            return False
        wait = max((due - datetime.now(UTC)).total_seconds(), 0.0) + 0.01
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
        return True

    def _record(
        self,
        conn: Connection,
        done: tuple[list[Result], bool] | None,
        run_id: str | None,
        counts: Counts,
        in_flight: list[OutboxItem],
    ) -> DestinationState:
        """Record a sent batch's outcomes (if any), free the lanes not in flight; the state after it."""
        states = StateRepository(conn)
        state = states.get(self.destination.name)
        if done is None:
            return state
        results, healthy = done
        now = datetime.now(UTC)
        policy = self.destination.retry
        outbox = OutboxRepository(conn)
        sent = [r.item.pk for r in results if r.verdict is retry.Verdict.OK]
        outbox.mark_sent(sent, now, run_id, None)
        counts.sent += len(sent)
        for r in results:
            if r.verdict is retry.Verdict.OK:
                continue
            if r.verdict is retry.Verdict.RETRY and r.item.attempts + 1 < policy.max_attempts:
                delay = retry.next_delay(r.item.attempts + 1, policy, r.retry_after, self.rng)
                outbox.defer(
                    r.item, self.destination.name, now + timedelta(seconds=delay), now, r.status, r.error
                )
                counts.retrying += 1
                continue
            error = (
                r.error
                if r.verdict is not retry.Verdict.RETRY
                else f"gave up after {r.item.attempts + 1} attempts: {r.error}"
            )
            outbox.mark_dead(r.item.pk, now, run_id, r.status, error, r.response)
            counts.dead += 1
            counts.errors.append(
                {"at": now.isoformat(), "outbox": r.item.pk, "status": r.status, "error": error[:300]}
            )
        breaker = state.breaker.success() if healthy else state.breaker.failure(now, self.destination.breaker)
        states.record_exchange(state, breaker, now if healthy and sent else None)
        outbox.release(self.destination.name, self.holder, keep=[i.lane for i in in_flight])
        if run_id:
            RunRepository(conn).heartbeat(run_id, counts.as_dict(), counts.errors, now)
        log.info(
            "sync batch",
            extra={
                "destination": self.destination.name,
                "entries": len(results),
                "sent": len(sent),
                "healthy": healthy,
            },
        )
        return replace(state, breaker=breaker)


def one_entry_per_resource(items: list[OutboxItem]) -> list[OutboxItem]:
    """The claimed items up to each lane's first repeat of a resource (items in lane, pk order).

    Two versions of one resource can be pending together (the first waited for a retry, or the
    destination was paused). A FHIR server processes a transaction's DELETEs before its PUTs and must
    refuse one that touches a resource twice; a batch has no order at all. So a Bundle carries one
    entry per resource: the rest of that lane stays pending, in order, for the next exchange.
    """
    seen: set[tuple[str, str]] = set()
    cut: set[str] = set()
    out: list[OutboxItem] = []
    for item in items:
        if item.lane in cut:
            continue
        if item.kind == "resource" and item.resource_type and item.resource_id:
            key = (item.resource_type, item.resource_id)
            if key in seen:
                cut.add(item.lane)
                continue
            seen.add(key)
        out.append(item)
    return out


@dataclass
class _Flight:
    """A batch handed to the sender thread."""

    items: list[OutboxItem]
    future: Future[tuple[list[Result], bool]]
