"""From accepted clinic records to FHIR resource versions: map, validate once, diff by content hash.

Mapping and model validation run outside the write lock (they depend only on the record and the
clinic configuration). Inside the write transaction only the version decisions are made: a resource
gets a new version when its content hash differs from the stored one, and a resource that an
updated record no longer produces is deleted once no other record produces it either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from integration.settings import Settings
from integration.store.resources import ResourceRepository, ResourceState, ResourceWrite
from mappings import ClinicOrganization, MappingContext, map_record_dicts
from mappings.dispatch import static_dicts
from mappings.ids import resource_id
from mappings.models import validate

_SORTED = orjson.OPT_SORT_KEYS
STATIC_SOURCE = ("config", "static")
# Resources several records legitimately produce: each session of a series writes its CarePlan.
SHARED_TYPES = frozenset({"CarePlan"})


@dataclass(frozen=True, slots=True)
class Conflict:
    """A record produces a resource that belongs to another record: a child id reused across records."""

    source_kind: str
    source_id: str
    resource_type: str
    clinic_id: str
    owner_kind: str
    owner_id: str

    @property
    def message(self) -> str:
        return (
            f"its {self.resource_type} for clinic id {self.clinic_id!r} already belongs to "
            f"{self.owner_kind} {self.owner_id!r}: ids must be unique within their kind"
        )


class ProducerConflict(Exception):
    """Records that would overwrite resources other records own; nothing was written."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(f"{len(conflicts)} resource ownership conflicts")
        self.conflicts = conflicts


@dataclass(slots=True)
class MappedResource:
    """One resource as plain R4 JSON, with the hash of its content (meta excluded).

    `validated` is False only while the resource's exact content is known to be stored already
    (it was validated when it was stored): write_resources validates it if it is written after all.
    """

    resource_type: str
    id: str
    body: dict[str, Any]
    content_hash: str
    patient_id: str | None
    validated: bool = True


@dataclass(slots=True)
class Produced:
    """Everything one accepted clinic record now produces."""

    source_kind: str
    source_id: str
    resources: list[MappedResource]


def mapping_context(settings: Settings) -> MappingContext:
    organization = ClinicOrganization(
        clinic_id=settings.clinic_id,
        name=settings.clinic_name,
        npi=settings.clinic_npi or None,
        phone=settings.clinic_phone or None,
    )
    return MappingContext(
        base_url=settings.clinic_base_url, organization=organization, system_name=settings.clinic_system_name
    )


def map_to_fhir(
    kind: str,
    record: dict[str, Any],
    ctx: MappingContext,
    patient_clinic_id: str | None,
    *,
    validate_now: bool = True,
) -> list[MappedResource]:
    """Map one valid record and validate each resource with its R4B model (raises MappingError or
    pydantic's ValidationError, which the caller turns into a rejection of the record).

    With `validate_now` False the resources come back built and hashed but not yet validated:
    the caller runs `validate_unknown` on them (after reading what is stored).
    """
    patient_id = resource_id("patient", patient_clinic_id) if patient_clinic_id else None
    build = mapped if validate_now else unvalidated
    return [build(d, patient_id) for d in map_record_dicts(kind, record, ctx)]


def static_resources(ctx: MappingContext) -> Produced:
    """The configuration-derived resources (Organization, Device, Questionnaires, CodeSystems).

    Validated by write_resources when written: on most starts none changed, and none is.
    """
    return Produced(*STATIC_SOURCE, [unvalidated(d, None) for d in static_dicts(ctx)])


def mapped(body: dict[str, Any], patient_id: str | None) -> MappedResource:
    """Validate one built resource and hash its content (meta excluded, as the store compares it)."""
    validate(body)
    return unvalidated(body, patient_id)


def unvalidated(body: dict[str, Any], patient_id: str | None) -> MappedResource:
    """Hash one built resource; it must pass `validate_unknown` or write_resources before it is stored."""
    content_hash = hashlib.sha256(orjson.dumps(body, option=_SORTED)).hexdigest()
    own_patient = body["id"] if body["resourceType"] == "Patient" else patient_id
    return MappedResource(body["resourceType"], body["id"], body, content_hash, own_patient, validated=False)


def validate_unknown(
    resources: Sequence[MappedResource], stored: Mapping[tuple[str, str], ResourceState], seen: set[str]
) -> int:
    """Validate, with its R4B model, each resource whose exact content is not already known valid.

    Known valid: it is the stored current version (same content hash, not deleted), so it will not
    be written at all; or the same content was validated earlier in this batch (`seen`, updated
    here), like the CarePlan each session of a series produces. Raises ValidationError as
    `mapped` does. Returns how many were validated.
    """
    count = 0
    for r in resources:
        if r.validated:
            continue
        if r.content_hash in seen:
            r.validated = True
            continue
        state = stored.get((r.resource_type, r.id))
        if state is not None and not state.deleted and state.content_hash == r.content_hash:
            continue  # unchanged: not written (and validated in write_resources if that changes)
        validate(r.body)
        r.validated = True
        seen.add(r.content_hash)
        count += 1
    return count


def write_resources(repo: ResourceRepository, produced: Sequence[Produced], now: datetime) -> int:
    """Write the new versions (and deletions) the produced resources call for; returns how many.

    Raises ProducerConflict, before writing anything, when a record would take over a resource
    another record produces (say a medication id reused in a second session).
    """
    repo.refresh_statistics()
    _check_ownership(repo, produced)
    latest: dict[tuple[str, str], MappedResource] = {}
    for p in produced:
        for r in p.resources:
            latest[(r.resource_type, r.id)] = r  # a shared resource produced twice: the last one wins
    before: dict[str, dict[str, set[tuple[str, str]]]] = {}
    for kind in {p.source_kind for p in produced}:
        before[kind] = repo.produced_by(kind, [p.source_id for p in produced if p.source_kind == kind])

    add_links: list[tuple[str, str, str, str]] = []
    drop_links: list[tuple[str, str, str, str]] = []
    orphan_candidates: set[tuple[str, str]] = set()
    for p in produced:
        now_made = {(r.resource_type, r.id) for r in p.resources}
        made_before = before[p.source_kind].get(p.source_id, set())
        add_links += [(p.source_kind, p.source_id, *key) for key in now_made - made_before]
        gone = made_before - now_made
        drop_links += [(p.source_kind, p.source_id, *key) for key in gone]
        orphan_candidates |= gone
    orphan_candidates -= set(latest)

    states = repo.states([*latest, *orphan_candidates])
    stamp = _instant(now)
    writes: list[ResourceWrite] = []
    for key, r in latest.items():
        state = states.get(key)
        if state is not None and not state.deleted and state.content_hash == r.content_hash:
            continue
        if not r.validated:  # stored unchanged when read before the lock; since changed: validate now
            validate(r.body)
            r.validated = True
        version = state.version_id + 1 if state else 1
        body = {**r.body, "meta": {**r.body.get("meta", {}), "versionId": str(version), "lastUpdated": stamp}}
        content = orjson.dumps(body, option=_SORTED).decode()
        writes.append(
            ResourceWrite(r.resource_type, r.id, version, r.content_hash, content, r.patient_id, body)
        )

    repo.unlink(drop_links)
    still_made = set(repo.producers(orphan_candidates))
    for key in sorted(orphan_candidates - still_made):
        state = states.get(key)
        if state is None or state.deleted:
            continue
        writes.append(
            ResourceWrite(key[0], key[1], state.version_id + 1, state.content_hash, None, state.patient_id)
        )
    # New resources first: the source links point at their rows.
    repo.write(writes, now=now)
    repo.link(add_links)
    return len(writes)


def _check_ownership(repo: ResourceRepository, produced: Sequence[Produced]) -> None:
    exclusive = {
        (r.resource_type, r.id) for p in produced for r in p.resources if r.resource_type not in SHARED_TYPES
    }
    owners = repo.producers(exclusive)
    claimed: dict[tuple[str, str], tuple[str, str]] = {}
    conflicts: list[Conflict] = []
    for p in produced:
        me = (p.source_kind, p.source_id)
        for r in p.resources:
            key = (r.resource_type, r.id)
            if key not in exclusive:
                continue
            others = owners.get(key, set()) | ({claimed[key]} if key in claimed else set())
            others.discard(me)
            if others:
                owner = min(others)
                conflicts.append(Conflict(*me, r.resource_type, _clinic_id(r.body), *owner))
            claimed.setdefault(key, me)
    if conflicts:
        raise ProducerConflict(conflicts)


def _clinic_id(body: dict[str, Any]) -> str:
    identifier = body.get("identifier")
    first = identifier[0] if isinstance(identifier, list) and identifier else identifier
    return first.get("value", body["id"]) if isinstance(first, dict) else body["id"]


def _instant(now: datetime) -> str:
    """FHIR instant with millisecond precision, as stored in meta.lastUpdated."""
    return now.isoformat(timespec="milliseconds")
