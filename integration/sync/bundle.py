"""Bundles of idempotent writes, pure: built from the stored bytes by concatenation, never re-validated.

A write is `PUT Type/id` with our deterministic id, or, where the server supports it, a conditional
update `PUT Type?identifier=system|value` on our identifier; a deleted version is `DELETE` the same
way. Each entry's fullUrl is `{base}/Type/id`, so a reference `Type/id` inside the bundle resolves to
the entry that carries it (FHIR R4 Bundle 3.3.1.4.1) and the server rewrites it if it assigns its own id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import orjson

# An id that needs no percent-encoding in a URL path (the FHIR id grammar is a subset).
_PLAIN_ID = re.compile(r"[A-Za-z0-9.-]+\Z")


class BundleError(ValueError):
    """A stored resource cannot be sent as it is (wrong type or id, not JSON)."""


@dataclass(frozen=True)
class EntryWrite:
    """One resource version to write; `content` is the stored R4 JSON (None for a deletion)."""

    resource_type: str
    resource_id: str
    content: str | None
    identifier: tuple[str, str] | None = None  # our (system, value), for conditional writes

    @property
    def deleted(self) -> bool:
        return self.content is None


def identifier_of(content: str, system_prefix: str) -> tuple[str, str] | None:
    """Our own identifier (system under the clinic's sid root) in a stored resource, if it has one."""
    found = orjson.loads(content).get("identifier") or []
    for ident in [found] if isinstance(found, dict) else found:  # QuestionnaireResponse has one
        system, value = ident.get("system", ""), ident.get("value")
        if system.startswith(system_prefix) and value:
            return system, value
    return None


def request_of(write: EntryWrite, conditional: bool) -> tuple[str, str]:
    """(method, url relative to the base) of one write."""
    method = "DELETE" if write.deleted else "PUT"
    if conditional and write.identifier is not None:
        system, value = write.identifier
        return method, f"{write.resource_type}?identifier={quote(system, safe=':/')}|{quote(value, safe='')}"
    rid = write.resource_id
    return method, f"{write.resource_type}/{rid if _PLAIN_ID.match(rid) else quote(rid, safe='')}"


def body_of(write: EntryWrite, conditional: bool) -> bytes | None:
    """The resource bytes to send: the stored bytes, or without `id` for a conditional write."""
    if write.content is None:
        return None
    if conditional and write.identifier is not None:
        resource = orjson.loads(write.content)
        resource.pop("id", None)
        return orjson.dumps(resource)
    return write.content.encode()


def build(writes: Sequence[EntryWrite], bundle_type: str, base_url: str, conditional: bool) -> bytes:
    """A transaction or batch Bundle of the writes, in order."""
    if bundle_type not in ("transaction", "batch"):
        raise ValueError("bundle_type must be transaction or batch")
    entries = []
    for write in writes:
        method, url = request_of(write, conditional)
        body = body_of(write, conditional)
        entries.append(
            b"".join(
                (
                    b'{"fullUrl":',
                    orjson.dumps(f"{base_url}/{write.resource_type}/{write.resource_id}"),
                    b',"resource":' + body if body is not None else b"",
                    b',"request":{"method":"',
                    method.encode(),
                    b'","url":',
                    orjson.dumps(url),
                    b"}}",
                )
            )
        )
    head = b'{"resourceType":"Bundle","type":"' + bundle_type.encode() + b'","entry":['
    return head + b",".join(entries) + b"]}"


def check(writes: Sequence[EntryWrite]) -> list[str]:
    """Problems that would make a write wrong (for dry runs): not JSON, type or id not the entry's."""
    problems = []
    for write in writes:
        if write.content is None:
            continue
        label = f"{write.resource_type}/{write.resource_id}"
        try:
            resource = orjson.loads(write.content)
        except orjson.JSONDecodeError:
            problems.append(f"{label}: stored content is not JSON")
            continue
        if resource.get("resourceType") != write.resource_type or resource.get("id") != write.resource_id:
            problems.append(f"{label}: stored resourceType/id differ from the entry")
    return problems


@dataclass(frozen=True)
class EntryOutcome:
    status: int | None  # None: the response bundle did not answer this entry
    outcome: str | None  # the entry's OperationOutcome, as JSON text


def entry_outcomes(response: object, count: int) -> list[EntryOutcome]:
    """Per-entry answers of a (transaction|batch)-response Bundle, in request order."""
    entries = response.get("entry") if isinstance(response, dict) else None
    if not isinstance(entries, list):
        entries = []
    out = []
    for index in range(count):
        entry = entries[index] if index < len(entries) else None
        answer = entry.get("response") if isinstance(entry, dict) else None
        if not isinstance(answer, dict):
            out.append(_UNANSWERED)
            continue
        status, outcome = answer.get("status"), answer.get("outcome")
        known = _status(status) if isinstance(status, str) else _UNANSWERED
        if outcome:
            out.append(EntryOutcome(known.status, orjson.dumps(outcome).decode()))
        else:  # the usual answer: one shared value per status line, not one object per entry
            out.append(known)
    return out


_UNANSWERED = EntryOutcome(None, None)


@lru_cache(maxsize=256)
def _status(text: str) -> EntryOutcome:
    """The outcome of a status line without an OperationOutcome (its code, None if it has none)."""
    head = text.strip().split(" ", 1)[0]
    return EntryOutcome(int(head) if head.isdigit() else None, None)
