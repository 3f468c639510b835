"""Sending one claimed batch to a destination, by write mode, and judging each entry's answer.

A transaction Bundle is all or nothing: a refused transaction is re-sent entry by entry to find the
entry at fault. A batch Bundle answers per entry. Individual mode sends one request per write and
stops a lane at its first temporary failure, so the lane's later writes wait behind it. Request
items (any method, path and body) are always sent one by one. Nothing here touches the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, select, tuple_

from integration.store.db import Database
from integration.store.schema import fhir_resource_version
from integration.sync import bundle, retry
from integration.sync.auth import AuthError
from integration.sync.client import Answer, FhirClient, TransportError
from integration.sync.destinations import Destination
from integration.sync.outbox import OutboxItem

RESPONSE_LIMIT = 65536
# A signer adds headers computed over the exact body bytes when the request is sent (outbox.py `signer`).
Signer = Callable[[bytes], Mapping[str, str]]


@dataclass
class Result:
    item: OutboxItem
    verdict: retry.Verdict
    status: int | None = None
    error: str = ""
    response: str | None = None
    retry_after: float | None = None


class Sender:
    def __init__(
        self,
        db: Database,
        client: FhirClient,
        destination: Destination,
        system_prefix: str,
        signers: Mapping[str, Signer] | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.destination = destination
        self.system_prefix = system_prefix
        self.signers = dict(signers or {})

    def send(self, items: list[OutboxItem], mode: str, conditional: bool) -> tuple[list[Result], bool]:
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
        if not wanted and not conditional:  # the claim read every stored version already
            return {
                i.pk: bundle.EntryWrite(str(i.resource_type), str(i.resource_id), i.content) for i in items
            }
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

    def _exchange(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> Answer | str:
        try:
            return self.client.request(method, path, body, content_type=content_type, extra=extra)
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
            extra = None
            if item.kind == "request":
                extra = orjson.loads(item.headers) if item.headers else None
                method, path = str(item.method), str(item.path)
                body = item.body.encode() if item.body is not None else None
                content_type = item.content_type or "application/fhir+json"
                if item.signer is not None:
                    signed = self._sign(item, body or b"")
                    if isinstance(signed, Result):
                        results.append(signed)
                        blocked.add(item.lane)
                        continue
                    extra = {**(extra or {}), **signed}
            else:
                write = writes[item.pk]
                method, path = bundle.request_of(write, conditional)
                body, content_type = bundle.body_of(write, conditional), "application/fhir+json"
            unsendable = self._unsendable(item, path)
            if unsendable is not None:
                results.append(unsendable)  # this entry only: the others of the batch go on
                continue
            answer = self._exchange(method, path, body, content_type, extra)
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

    def _unsendable(self, item: OutboxItem, path: str) -> Result | None:
        """A dead letter when the path cannot make a URL under the destination's base (e.g. an id such as
        `..`, or a request path naming another origin): no retry can change that, and nothing is sent."""
        try:
            self.client.url(path)
        except ValueError as exc:
            return Result(item, retry.Verdict.DEAD, None, f"cannot send: {exc}")
        return None

    def _sign(self, item: OutboxItem, body: bytes) -> Mapping[str, str] | Result:
        """The signer's headers now, or a temporary failure (not the partner's: the breaker ignores it)
        when this engine has no such signer or it cannot sign (e.g. its secret left the environment)."""
        signer = self.signers.get(str(item.signer))
        if signer is None:
            return Result(item, retry.Verdict.RETRY, None, f"no signer {str(item.signer)[:32]!r} configured")
        try:
            return signer(body)
        except (KeyError, ValueError) as exc:
            return Result(item, retry.Verdict.RETRY, None, f"could not sign: {exc}")

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
