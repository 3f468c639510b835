"""Intake of clinic records: validate, resolve references, and store new versions atomically.

Validation is pure and runs before any lock is taken. The writes of one call happen in one
database transaction, so a crash or error leaves every record either fully stored or not at all;
rejected records never touch the store, and a batch is all-or-nothing per record, not per batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from integration.ingest.gc_pause import gc_paused
from integration.ingest.groups import refresh_referrer_groups
from integration.ingest.problems import RecordError, Reference
from integration.ingest.resources import (
    SHARED_TYPES,
    MappedResource,
    Produced,
    ProducerConflict,
    map_to_fhir,
    static_resources,
    validate_unknown,
    write_resources,
)
from integration.ingest.validation import KINDS, patient_of, references, validate_record
from integration.store.audit import AuditEntry, AuditRepository
from integration.store.db import Database
from integration.store.records import ClinicRecordRepository, ConcurrentUpdate, NewVersion
from integration.store.resources import ResourceRepository, ResourceState
from mappings import MappingContext, MappingError

log = logging.getLogger(__name__)

COLLECTIONS = {
    "practitioners": "practitioner",
    "patients": "patient",
    "referrals": "referral",
    "sessions": "session",
    "assessments": "assessment",
}
_WRITE_ATTEMPTS = 3


@dataclass(slots=True)
class Outcome:
    """The answer for one record: accepted (new version), unchanged, or rejected with its errors."""

    kind: str
    id: str | None
    status: str = "rejected"
    version: int | None = None
    errors: list[RecordError] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.id,
            "status": self.status,
            "version": self.version,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(slots=True)
class _Candidate:
    outcome: Outcome
    record: dict[str, object]
    payload: bytes = b""
    content_hash: str = ""
    references: list[Reference] = field(default_factory=list)
    fhir: list[MappedResource] | None = None
    # Errors found before touching the store (contract rules, duplicates); kept across write retries.
    early_errors: list[RecordError] = field(default_factory=list)

    def reset(self) -> None:
        """Forget what a previous (rolled back) write attempt concluded."""
        self.outcome.errors = list(self.early_errors)
        self.outcome.status = "rejected" if self.early_errors else "pending"
        self.outcome.version = None


def canonical(record: dict[str, object]) -> tuple[bytes, str]:
    """Canonical bytes (sorted keys, no whitespace) and their SHA-256: the idempotency key's content."""
    payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return payload, hashlib.sha256(payload).hexdigest()


def ingest(
    db: Database,
    records: Iterable[tuple[str, object]],
    *,
    ctx: MappingContext,
    source: str,
    request_id: str | None = None,
    audit: AuditEntry | None = None,
    audit_outcome: Callable[[list[Outcome]], int] | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Validate and store (kind, record) pairs; answer one Outcome per pair, in input order.

    `audit`, when given, is committed in the same transaction as the records it describes, with
    the outcome `audit_outcome` derives from the answers (the HTTP status the caller will send).
    """
    with gc_paused():
        return _ingest(db, records, ctx, source, request_id, audit, audit_outcome, now)


def _ingest(
    db: Database,
    records: Iterable[tuple[str, object]],
    ctx: MappingContext,
    source: str,
    request_id: str | None,
    audit: AuditEntry | None,
    audit_outcome: Callable[[list[Outcome]], int] | None,
    now: datetime | None,
) -> list[Outcome]:
    candidates = [_validate(kind, record) for kind, record in records]
    _reject_duplicates(candidates)
    _map_changed(db, candidates, ctx)
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            with db.serialized_writer() as conn:
                # Stamped under the lock: recorded times rise with the change feed (Bulk _since needs it).
                received_at = _millis(now or datetime.now(UTC))
                accepted = _store(ClinicRecordRepository(conn), candidates, source, received_at, request_id)
                produced = [_produced(c, ctx) for c in accepted]
                write_resources(ResourceRepository(conn), produced, received_at)
                referrals = [c.record for c in accepted if c.outcome.kind == "referral"]
                refresh_referrer_groups(conn, referrals, ctx, received_at)
                if audit is not None:
                    outcomes = [c.outcome for c in candidates]
                    audit.detail = _summary(candidates)
                    audit.outcome = audit_outcome(outcomes) if audit_outcome else 200
                    AuditRepository(conn).record(audit)
            return [c.outcome for c in candidates]
        except ProducerConflict as exc:
            # Reject the records that reuse another record's child ids, then write the rest.
            by_key = {(c.outcome.kind, c.outcome.id): c for c in candidates}
            for conflict in exc.conflicts:
                c = by_key[(conflict.source_kind, conflict.source_id)]
                c.early_errors.append(
                    RecordError(c.outcome.kind, c.outcome.id, "", "duplicate-id", conflict.message)
                )
            if attempt == _WRITE_ATTEMPTS:
                raise
        except (IntegrityError, ConcurrentUpdate):
            # Only a writer outside serialized_writer can get here (e.g. a manual fix); re-read and retry.
            if attempt == _WRITE_ATTEMPTS:
                raise
            log.warning("concurrent intake write, retrying", extra={"attempt": attempt})
    raise AssertionError("unreachable")


def write_static_resources(db: Database, ctx: MappingContext) -> int:
    """Store the Organization, Device, Questionnaires and CodeSystems the configuration defines.

    Idempotent: run on every migration and start, it writes new versions only of what changed.
    """
    produced = static_resources(ctx)
    with db.serialized_writer() as conn:
        return write_resources(ResourceRepository(conn), [produced], _millis(datetime.now(UTC)))


def _map_changed(db: Database, candidates: list[_Candidate], ctx: MappingContext) -> None:
    """Map and validate the records that look new or changed, before the write lock is taken.

    Mapping depends only on the record and the configuration, so it stays right even if another
    writer moves a head meanwhile; the write transaction maps whatever this pass did not.
    Resources whose exact content is already stored as their current version are not validated
    again (they will not be written; write_resources validates any that a concurrent writer
    changed meanwhile), nor is content validated once already in this batch.
    """
    valid = [c for c in candidates if not c.early_errors]
    with db.reader() as conn:
        heads = ClinicRecordRepository(conn).heads((c.outcome.kind, c.outcome.id) for c in valid)  # type: ignore[misc]
    changed: list[tuple[_Candidate, bool]] = []
    for c in valid:
        head = heads.get((c.outcome.kind, c.outcome.id))  # type: ignore[arg-type]
        if head is None or head.content_hash != c.content_hash:
            _map(c, ctx, validate_now=False)
            changed.append((c, head is not None))
    # Only an updated record (or a resource several records share) can find its content stored.
    wanted = {
        (r.resource_type, r.id)
        for c, updated in changed
        for r in c.fhir or ()
        if updated or r.resource_type in SHARED_TYPES
    }
    stored: dict[tuple[str, str], ResourceState] = {}
    if wanted:
        with db.reader() as conn:
            stored = ResourceRepository(conn).states(wanted)
    seen: set[str] = set()
    for c, _ in changed:
        if c.fhir is None:
            continue
        try:
            validate_unknown(c.fhir, stored, seen)
        except ValidationError as exc:
            c.fhir = None
            _unmappable(c, exc)


def _map(c: _Candidate, ctx: MappingContext, *, validate_now: bool = True) -> None:
    try:
        c.fhir = map_to_fhir(
            c.outcome.kind, c.record, ctx, patient_of(c.outcome.kind, c.record), validate_now=validate_now
        )
    except (MappingError, ValidationError) as exc:
        _unmappable(c, exc)


def _unmappable(c: _Candidate, exc: MappingError | ValidationError) -> None:
    """A record the contract accepts but FHIR cannot express is rejected, never stored half-mapped."""
    message = f"the record cannot be expressed in FHIR: {_mapping_reason(exc)}"
    c.early_errors.append(RecordError(c.outcome.kind, c.outcome.id, "", "mapping", message))
    log.warning(
        "mapping rejected a valid record", extra={"kind": c.outcome.kind, "error": type(exc).__name__}
    )


def _mapping_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{exc.title} {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def _produced(c: _Candidate, ctx: MappingContext) -> Produced:
    if c.fhir is None:  # its head moved after the pre-read: map it now, inside the transaction
        _map(c, ctx)
        if c.fhir is None:  # it cannot be mapped: start over, so it is rejected with everything undone
            raise ConcurrentUpdate(c.outcome.kind, c.outcome.id or "")
    return Produced(c.outcome.kind, c.outcome.id, c.fhir)  # type: ignore[arg-type]


def _millis(moment: datetime) -> datetime:
    """Millisecond precision: what FHIR meta.lastUpdated shows is exactly what the store keeps."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _validate(kind: str, record: object) -> _Candidate:
    record_id = record.get("id") if isinstance(record, dict) else None
    outcome = Outcome(kind=kind, id=record_id if isinstance(record_id, str) else None)
    candidate = _Candidate(outcome=outcome, record=record if isinstance(record, dict) else {})
    candidate.early_errors = validate_record(kind, record)
    if candidate.early_errors:
        return candidate
    candidate.payload, candidate.content_hash = canonical(candidate.record)
    candidate.references = references(kind, candidate.record)
    return candidate


def _reject_duplicates(candidates: list[_Candidate]) -> None:
    """The same record twice in one call is ambiguous unless both copies are identical."""
    first: dict[tuple[str, str], _Candidate] = {}
    for c in candidates:
        if c.early_errors or c.outcome.id is None:
            continue
        key = (c.outcome.kind, c.outcome.id)
        earlier = first.get(key)
        if earlier is None:
            first[key] = c
        elif earlier.content_hash != c.content_hash:
            message = f"{key[0]} {key[1]!r} appears earlier in this batch with other content"
            c.early_errors.append(RecordError(key[0], key[1], "", "duplicate-in-batch", message))


def _store(
    repo: ClinicRecordRepository,
    candidates: list[_Candidate],
    source: str,
    received_at: datetime,
    request_id: str | None,
) -> list[_Candidate]:
    """Decide each record's fate and write the new versions; returns the accepted candidates."""
    for c in candidates:
        c.reset()
    pending = [c for c in candidates if c.outcome.status == "pending"]
    wanted = {(ref.kind, ref.id) for c in pending for ref in c.references}
    heads = repo.heads([*wanted, *((c.outcome.kind, c.outcome.id) for c in pending)])  # type: ignore[list-item]
    known: set[tuple[str, str]] = set(heads)
    versions: list[NewVersion] = []
    written: dict[tuple[str, str], int] = {}
    # Kinds only refer to kinds before them, so one pass in dependency order resolves the batch.
    for kind in KINDS:
        for c in pending:
            if c.outcome.kind != kind:
                continue
            key = (kind, c.outcome.id)
            missing = [r for r in c.references if (r.kind, r.id) not in known]
            if missing:
                for ref in missing:
                    message = (
                        f"{ref.path} names {ref.kind} {ref.id!r}, not stored and not accepted in this batch"
                    )
                    _reject(c, ref.path, "reference", message)
                continue
            if key in written:  # an identical copy earlier in the batch
                c.outcome.status, c.outcome.version = "unchanged", written[key]
                continue
            head = heads.get(key)  # type: ignore[arg-type]
            if head is not None and head.content_hash == c.content_hash:
                c.outcome.status, c.outcome.version = "unchanged", head.version
            else:
                version = head.version + 1 if head else 1
                versions.append(
                    NewVersion(
                        kind,
                        c.outcome.id,
                        version,
                        c.content_hash,
                        c.payload.decode(),
                        patient_of(kind, c.record),
                    )  # type: ignore[arg-type]
                )
                c.outcome.status, c.outcome.version = "accepted", version
            written[key] = c.outcome.version  # type: ignore[assignment]
            known.add(key)  # type: ignore[arg-type]
    repo.write(versions, source=source, received_at=received_at, request_id=request_id)
    return [c for c in pending if c.outcome.status == "accepted"]


def _reject(c: _Candidate, path: str, rule: str, message: str) -> None:
    c.outcome.status, c.outcome.version = "rejected", None
    c.outcome.errors.append(RecordError(c.outcome.kind, c.outcome.id, path, rule, message))


def _summary(candidates: list[_Candidate]) -> dict[str, object]:
    counts = {"accepted": 0, "unchanged": 0, "rejected": 0}
    for c in candidates:
        counts[c.outcome.status] = counts.get(c.outcome.status, 0) + 1
    return counts
