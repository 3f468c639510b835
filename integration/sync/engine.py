"""The delivery engine of one destination: claim lanes from the outbox, send, record each entry's outcome.

Sending follows the write mode: a transaction Bundle (all or nothing; a refused transaction is
re-sent entry by entry to find the entry at fault), a batch Bundle (an answer per entry), or one
request per write. Verdicts come from `retry.classify`; temporary failures wait (backoff, or the
server's Retry-After) and hold the lane back, permanent ones become dead letters with the server's
answer. Logs carry counts and statuses only: no ids, URLs, bodies or tokens.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, tuple_

from integration.settings import Settings
from integration.store.db import Database
from integration.store.schema import fhir_resource_version, sync_outbox
from integration.sync import bundle, retry
from integration.sync.auth import AuthError
from integration.sync.breaker import HALF_OPEN
from integration.sync.capabilities import choose, discover, needs_discovery
from integration.sync.client import Answer, FhirClient, TransportError
from integration.sync.destinations import Destination
from integration.sync.outbox import OutboxItem, OutboxRepository
from integration.sync.runs import RunRepository
from integration.sync.state import StateRepository

log = logging.getLogger(__name__)
RESPONSE_LIMIT = 65536


@dataclass
class Result:
    item: OutboxItem
    verdict: retry.Verdict
    status: int | None = None
    error: str = ""
    response: str | None = None
    retry_after: float | None = None


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
    ) -> None:
        self.db = db
        self.settings = settings
        self.destination = destination
        self.client = client or FhirClient(destination, settings)
        self.holder = uuid.uuid4().hex
        self.lease_seconds = lease_seconds or destination.connect_timeout + 2 * destination.read_timeout + 30
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.after_send = after_send  # test hook: runs between send and recording (crash tests)
        self.system_prefix = f"{settings.clinic_base_url.rstrip('/')}/sid/"

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
        """Deliver due outbox rows until none is due (or due within `linger` seconds)."""
        counts = counts or Counts()
        mode, conditional = choose(self.destination, self.capabilities())
        batches = 0
        deadline = time.monotonic() + linger
        while max_batches is None or batches < max_batches:
            now = datetime.now(UTC)
            with self.db.reader() as conn:
                state = StateRepository(conn).get(self.destination.name)
            if state.paused:
                break
            if not state.breaker.allows(now, self.destination.breaker):
                counts.errors.append({"at": now.isoformat(), "error": "circuit open; delivery paused"})
                break
            probe = state.breaker.current(now, self.destination.breaker) == HALF_OPEN
            size = 1 if probe else self.destination.batch_size
            with self.db.writer() as conn:
                items = OutboxRepository(conn).claim(
                    self.destination.name,
                    self.holder,
                    lanes=size,
                    items=size,
                    lease_seconds=self.lease_seconds,
                    now=now,
                    lane=lane,
                )
            if not items:
                if not self._wait_for_due(deadline, lane):
                    break
                continue
            batches += 1
            results, healthy = self._send(items, mode, conditional)
            if self.after_send is not None:
                self.after_send()
            self._record(results, healthy, run_id, counts)
        return counts

    def _wait_for_due(self, deadline: float, lane: str | None) -> bool:
        """Sleep until the next pending row falls due, if that is before the deadline."""
        t = sync_outbox.c
        with self.db.reader() as conn:
            query = (
                select(t.next_attempt_at)
                .where(t.destination == self.destination.name, t.status == "pending")
                .order_by(t.next_attempt_at)
                .limit(1)
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

    def _record(self, results: list[Result], healthy: bool, run_id: str | None, counts: Counts) -> None:
        now = datetime.now(UTC)
        policy = self.destination.retry
        with self.db.writer() as conn:
            outbox = OutboxRepository(conn)
            states = StateRepository(conn)
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
            state = states.get(self.destination.name)
            breaker = (
                state.breaker.success() if healthy else state.breaker.failure(now, self.destination.breaker)
            )
            if breaker != state.breaker:
                states.set_breaker(self.destination.name, breaker)
            if healthy and sent:
                states.mark_success(self.destination.name, now)
            outbox.release(self.destination.name, self.holder)
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

    # --- sending -------------------------------------------------------------------------------
    def _send(self, items: list[OutboxItem], mode: str, conditional: bool) -> tuple[list[Result], bool]:
        """Send the items; returns per-item results and whether the server answered sanely."""
        resources = [i for i in items if i.kind == "resource"]
        writes = self.load_writes(resources, conditional)
        results: list[Result] = []
        healthy = True
        if resources and mode in ("transaction", "batch"):
            res, healthy = self._send_bundle(resources, writes, mode, conditional)
            results.extend(res)
        elif resources:
            res, healthy = self._send_each(resources, writes, conditional)
            results.extend(res)
        requests_ = [i for i in items if i.kind == "request"]
        if requests_:
            res, ok = self._send_each(requests_, {}, conditional)
            results.extend(res)
            healthy = healthy and ok
        return results, healthy

    def load_writes(self, items: list[OutboxItem], conditional: bool) -> dict[int, bundle.EntryWrite]:
        """The stored bytes of each item's version (and our identifier, for conditional writes)."""
        v = fhir_resource_version.c
        wanted: dict[str, list[tuple[str, int]]] = {}
        for item in items:
            if not item.deleted and item.content is None:
                wanted.setdefault(str(item.resource_type), []).append(
                    (str(item.resource_id), int(item.version_id or 0))
                )
        contents: dict[tuple[str, str, int], str] = {}
        with self.db.reader() as conn:
            for resource_type, keys in wanted.items():
                for start in range(0, len(keys), 400):
                    rows = conn.execute(
                        select(v.id, v.version_id, v.content).where(
                            v.resource_type == resource_type,
                            tuple_(v.id, v.version_id).in_(keys[start : start + 400]),
                        )
                    )
                    contents.update({(resource_type, r.id, r.version_id): r.content for r in rows})
            out: dict[int, bundle.EntryWrite] = {}
            for item in items:
                content = item.content or contents.get(
                    (str(item.resource_type), str(item.resource_id), int(item.version_id or 0))
                )
                identifier = None
                if conditional:
                    source = content or self._last_content(conn, item)
                    identifier = bundle.identifier_of(source, self.system_prefix) if source else None
                out[item.pk] = bundle.EntryWrite(
                    str(item.resource_type), str(item.resource_id), content, identifier
                )
        return out

    @staticmethod
    def _last_content(conn: Connection, item: OutboxItem) -> str | None:
        """The last live version's bytes of a deleted resource (where our identifier still is)."""
        v = fhir_resource_version.c
        return conn.execute(
            select(v.content)
            .where(v.resource_type == item.resource_type, v.id == item.resource_id, v.deleted.is_(False))
            .order_by(v.version_id.desc())
            .limit(1)
        ).scalar()

    def _exchange(self, method: str, path: str, body: bytes | None, content_type: str) -> Answer | str:
        try:
            return self.client.request(method, path, body, content_type=content_type)
        except TransportError as exc:
            return f"no answer ({exc})"
        except AuthError as exc:
            return f"authorization failed ({exc})"

    def _retry_after(self, answer: Answer) -> float | None:
        return retry.parse_retry_after(
            answer.headers.get("retry-after"),
            datetime.now(UTC),
            self.destination.retry.retry_after_cap_seconds,
        )

    def _send_bundle(
        self, items: list[OutboxItem], writes: dict[int, bundle.EntryWrite], mode: str, conditional: bool
    ) -> tuple[list[Result], bool]:
        body = bundle.build([writes[i.pk] for i in items], mode, self.destination.base_url, conditional)
        answer = self._exchange("POST", "", body, "application/fhir+json")
        if isinstance(answer, str):
            return [Result(i, retry.Verdict.RETRY, None, answer) for i in items], False
        verdict = retry.classify(answer.status)
        if verdict is retry.Verdict.DEAD:
            # The server refused the whole bundle: find the entry at fault by sending one at a time.
            return self._send_each(items, writes, conditional)
        if verdict is not retry.Verdict.OK:
            after = self._retry_after(answer)
            return [
                Result(i, retry.Verdict.RETRY, answer.status, f"HTTP {answer.status}", None, after)
                for i in items
            ], False
        outcomes = bundle.entry_outcomes(answer.json(), len(items))
        results = []
        for item, outcome in zip(items, outcomes, strict=True):
            status = outcome.status
            if status is None:
                status = 200 if mode == "transaction" else None  # a transaction's 200 answers every entry
            results.append(self._result(item, status, outcome.outcome, None))
        return results, True

    def _send_each(
        self, items: list[OutboxItem], writes: dict[int, bundle.EntryWrite], conditional: bool
    ) -> tuple[list[Result], bool]:
        results: list[Result] = []
        healthy = True
        blocked: set[str] = set()
        for item in items:
            if item.lane in blocked:
                continue  # an earlier write of this lane must go first; it waits, so these wait
            if item.kind == "request":
                method, path = str(item.method), str(item.path)
                body = item.body.encode() if item.body is not None else None
                content_type = item.content_type or "application/fhir+json"
            else:
                write = writes[item.pk]
                method, path = bundle.request_of(write, conditional)
                body, content_type = bundle.body_of(write, conditional), "application/fhir+json"
            answer = self._exchange(method, path, body, content_type)
            if isinstance(answer, str):
                results.append(Result(item, retry.Verdict.RETRY, None, answer))
                healthy = False
            else:
                text = answer.body[:RESPONSE_LIMIT].decode("utf-8", "replace") if answer.body else None
                result = self._result(item, answer.status, text, self._retry_after(answer))
                if method == "DELETE" and answer.status in (404, 410):
                    result = Result(item, retry.Verdict.OK, answer.status)  # already gone: the goal holds
                healthy = healthy and result.verdict is not retry.Verdict.RETRY
                results.append(result)
            if results[-1].verdict is retry.Verdict.RETRY:
                blocked.add(item.lane)
        return results, healthy

    def _result(
        self, item: OutboxItem, status: int | None, response: str | None, retry_after: float | None
    ) -> Result:
        if status is None:
            return Result(item, retry.Verdict.RETRY, None, "the server did not answer this entry")
        verdict = retry.classify(status)
        if verdict is retry.Verdict.REFRESH:
            verdict = retry.Verdict.RETRY  # still 401 after a fresh token: wait, the breaker counts it
        error = "" if verdict is retry.Verdict.OK else f"HTTP {status}"
        return Result(
            item, verdict, status, error, response if verdict is not retry.Verdict.OK else None, retry_after
        )
