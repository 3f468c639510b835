"""Pull from one EHR destination: referrals addressed to the clinic and demographics of linked patients.

Per pulled type, a `_lastUpdated` watermark minus an overlap window bounds the search; where the
server's CapabilityStatement does not declare `_lastUpdated` for the type, the pull falls back to a
full search filtered here on meta.lastUpdated (mode `search`). Every page goes through the clinic
intake (`ingest`, source `ehr`: validated, versioned and audited like any record); only then, in a
second transaction, are the versions seen recorded and the watermark moved. A crash between the two
re-reads the page next time, where intake finds every record unchanged: nothing is skipped, nothing
applied twice. The watermark moves per page only when results come sorted by `_lastUpdated`;
otherwise once, after the last page. `next` links are followed only under the destination's base URL.
Every request goes through `pull_guard.GuardedClient` (when the run uses one): a paused destination or
an open circuit stops the pull (`PullStopped`), and its failures count toward the destination's breaker.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from integration.ingest.service import ingest
from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database
from integration.sync.capabilities import discover
from integration.sync.client import FhirClient
from integration.sync.destinations import Destination
from integration.sync.pull_guard import PullStopped
from integration.sync.pull_records import (
    QUARANTINED,
    SKIPPED,
    TO_INTAKE,
    UNKNOWN_PATIENT,
    Item,
    PageResolver,
)
from integration.sync.pull_state import PullStateRepository
from integration.sync.runs import RunRepository
from integration.sync.state import StateRepository
from mappings import MappingContext

log = logging.getLogger(__name__)
MAX_PAGES = 10_000  # a server whose `next` links never end cannot hold a run forever
MAX_ERRORS = 200
_LABELS = {QUARANTINED: "rejected", UNKNOWN_PATIENT: "unknown_patient", SKIPPED: "skipped"}


class PullError(Exception):
    """The pull of one type cannot go on (an HTTP error, a `next` link off the destination)."""


@dataclass
class PullReport:
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)

    def error(self, **entry: Any) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"at": datetime.now(UTC).isoformat(), **entry})


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _version_key(resource: dict[str, Any]) -> str:
    meta = resource.get("meta") or {}
    return str(meta.get("versionId") or meta.get("lastUpdated") or "")[:100]


class Puller:
    def __init__(
        self,
        db: Database,
        client: FhirClient,
        destination: Destination,
        ctx: MappingContext,
        actor: str | None = None,
        fault: Any = None,
        run_id: str | None = None,
    ) -> None:
        assert destination.pull is not None
        self.db, self.client, self.destination, self.ctx = db, client, destination, ctx
        self.pull = destination.pull
        self.actor = actor
        self.resolver = PageResolver(db, client, destination, ctx, actor)
        self.fault = fault  # tests: called between storing a page and moving its watermark
        self.run_id = run_id  # heart-beaten with every page, so a long pull never looks dead

    # --- mode ------------------------------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        """What the server can do, learned once (again if learned before pulls needed search facts)."""
        with self.db.writer() as conn:  # get() creates the state row on first use
            known = StateRepository(conn).get(self.destination.name).capabilities
        if known is not None and "search" in known and not known.get("problems"):
            return known
        facts = discover(self.client)
        with self.db.writer() as conn:
            StateRepository(conn).set_capabilities(self.destination.name, facts, datetime.now(UTC))
        return facts

    @staticmethod
    def mode(facts: dict[str, Any], resource_type: str) -> tuple[str, bool]:
        """(`lastUpdated` or `search`, whether results can be asked sorted by _lastUpdated)."""
        params = set((facts.get("search") or {}).get(resource_type) or [])
        return ("lastUpdated" if "_lastUpdated" in params else "search"), "_sort" in params

    # --- run -------------------------------------------------------------------------------------
    def run(self, full: bool = False) -> PullReport:
        report = PullReport()
        if full:
            with self.db.writer() as conn:
                PullStateRepository(conn).reset(self.destination.name)
        try:
            facts = self.facts()
        except PullStopped as exc:  # paused, or the circuit open, before anything was read
            report.counts["stopped"] += 1
            report.error(error=f"pull stopped: {exc}")
            return report
        for resource_type in self.pull.resource_types:
            try:
                self.pull_type(resource_type, facts, report)
            except PullStopped as exc:  # paused, or the circuit opened: nothing more this run
                report.counts["stopped"] += 1
                report.error(resource_type=resource_type, error=f"pull stopped: {exc}")
                break
            except PullError as exc:
                report.counts["failed_types"] += 1
                report.error(resource_type=resource_type, error=str(exc))
            except Exception as exc:  # one type's failure must not keep the others from being pulled
                log.error(  # the type only: a message could quote the EHR's data
                    "pull of a resource type failed",
                    extra={"resource_type": resource_type, "error": type(exc).__name__},
                )
                report.counts["failed_types"] += 1
                report.error(resource_type=resource_type, error=f"unexpected {type(exc).__name__}")
        return report

    def pull_type(self, resource_type: str, facts: dict[str, Any], report: PullReport) -> None:
        mode, sortable = self.mode(facts, resource_type)
        report.modes[resource_type] = mode
        with self.db.reader() as conn:
            watermark = PullStateRepository(conn).watermark(self.destination.name, resource_type)
        since = watermark - timedelta(seconds=self.pull.overlap_seconds) if watermark else None
        params: list[tuple[str, str]] = [("_count", str(self.pull.page_size))]
        if resource_type == "Patient":
            params.append(("identifier", f"{self.ctx.sid('patient')}|"))  # linked patients only
        sorted_pages = False
        if mode == "lastUpdated":
            if since is not None:
                params.append(("_lastUpdated", f"ge{since.isoformat()}"))
            if sortable:
                params.append(("_sort", "_lastUpdated"))
                sorted_pages = True
        path = f"{resource_type}?{urlencode(params)}"
        highest, last_time = watermark, None
        for _ in range(MAX_PAGES):
            bundle = self._get(path)
            entries = [
                e["resource"]
                for e in bundle.get("entry") or []
                if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)
                and e["resource"].get("resourceType") == resource_type
                and (e.get("search") or {}).get("mode", "match") == "match"
            ]
            times = [_instant((r.get("meta") or {}).get("lastUpdated")) for r in entries]
            ordered = [t for t in (last_time, *times) if t is not None]
            if sorted_pages and any(b < a for a, b in itertools.pairwise(ordered)):
                sorted_pages = False  # the server ignored _sort: move the watermark only at the end
            last_time = ordered[-1] if ordered else last_time
            page_high = max((t for t in times if t), default=None)
            if page_high and (highest is None or page_high > highest):
                highest = page_high
            fresh = [
                (r, t)
                for r, t in zip(entries, times, strict=True)
                if since is None or t is None or t >= since
            ]
            report.counts["fetched"] += len(entries)
            report.counts["outside_window"] += len(entries) - len(fresh)
            seen_now = self.store_page(resource_type, [r for r, _ in fresh], report)
            if self.fault:
                self.fault(resource_type)
            self._commit(resource_type, seen_now, highest if sorted_pages else watermark, mode)
            next_path = self._next(bundle)
            if next_path is None:
                break
            path = next_path
        self._commit(resource_type, {}, highest, mode)

    def _commit(
        self, resource_type: str, seen: dict[str, tuple[str, str]], watermark: datetime | None, mode: str
    ) -> None:
        now = datetime.now(UTC)
        with self.db.writer() as conn:
            repo = PullStateRepository(conn)
            repo.mark_seen(self.destination.name, resource_type, seen, now)
            repo.advance(self.destination.name, resource_type, watermark, mode, now)
            if self.run_id:
                RunRepository(conn).touch(self.run_id, now)

    def _get(self, path: str) -> dict[str, Any]:
        answer = self.client.request("GET", path)
        body = answer.json()
        if answer.status != 200 or not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            raise PullError(f"search answered HTTP {answer.status}, not a searchset Bundle")
        return body

    def _next(self, bundle: dict[str, Any]) -> str | None:
        for link in bundle.get("link") or []:
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                base = self.destination.base_url + "/"
                if not link["url"].startswith(base):
                    raise PullError("a next link leads off the destination's base URL; not followed")
                return link["url"][len(base) :]
        return None

    # --- one page --------------------------------------------------------------------------------
    def store_page(
        self, resource_type: str, resources: list[dict[str, Any]], report: PullReport
    ) -> dict[str, tuple[str, str]]:
        """Resolve, map and ingest one page; answers remote id -> (version key, outcome) to record."""
        with self.db.reader() as conn:
            seen = PullStateRepository(conn).seen(
                self.destination.name, resource_type, (str(r.get("id")) for r in resources)
            )
        todo: list[tuple[Item, dict[str, Any]]] = []
        for resource in resources:
            remote_id, key = str(resource.get("id")), _version_key(resource)
            if key and seen.get(remote_id) == key:
                report.counts["already_applied"] += 1
                continue
            todo.append((Item(f"{resource_type}/{remote_id}"[:140], key), resource))
        if resource_type == "Patient":
            self.resolver.patients(todo)
        else:
            self.resolver.referrals(todo)
        self._ingest(resource_type, [item for item, _ in todo if item.state == TO_INTAKE])
        out: dict[str, tuple[str, str]] = {}
        for item, resource in todo:
            label = _LABELS.get(item.state, item.reason)
            report.counts[label] += 1
            if item.state in (QUARANTINED, UNKNOWN_PATIENT):  # visible to admins on the run
                report.error(resource=item.ref, rule=item.rule or label, path=item.path, error=item.reason)
            if item.state != UNKNOWN_PATIENT and item.version_key:  # unknown: look again once it is known
                out[str(resource.get("id"))[:64]] = (item.version_key, label)
        rejected = [i.ref for i, _ in todo if i.state == QUARANTINED]
        if rejected:
            with self.db.writer() as conn:
                AuditRepository(conn).record(
                    AuditEntry(
                        action="sync.pull.reject",
                        outcome=422,
                        actor=self.actor,
                        entity=f"{self.destination.name}/{resource_type}"[:200],
                        detail={"rejected": rejected[:100]},
                    )
                )
        return out

    def _ingest(self, resource_type: str, items: list[Item]) -> None:
        pairs = [pair for item in items for pair in item.pairs]
        if not pairs:
            return
        audit = AuditEntry(
            action="sync.pull",
            outcome=200,
            actor=self.actor,
            entity=f"{self.destination.name}/{resource_type}"[:200],
        )
        outcomes = iter(ingest(self.db, pairs, ctx=self.ctx, source="ehr", audit=audit))
        for item in items:
            mine = [next(outcomes) for _ in item.pairs]
            main = mine[-1]  # the referral or patient; a referrer practitioner comes before it
            bad = [o for o in mine if o.status == "rejected"]
            if bad:
                first = bad[0].errors[0] if bad[0].errors else None
                item.state, item.rule = QUARANTINED, first.rule if first else "rejected"
                item.path = f"{bad[0].kind}.{first.path}" if first else bad[0].kind
                item.reason = first.message if first else "rejected by intake"
            else:
                item.reason = "stored" if main.status == "accepted" else "unchanged"
