"""SMART system scopes in v2 (`system/Observation.rs`) and v1 (`.read`) syntax, so no grant is ever wider.

Pure: no Flask, no database. SMART App Launch 2.x, "Scopes and Launch Context" section 3: v2 permissions
are an ordered subset of `cruds`; v1 `read` = `rs`, `write` = `cud`, `*` = `cruds`. Granular v2 scopes
(`?param=value`) are not supported and are never granted, since nothing could enforce their filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PERMISSIONS = "cruds"
V1_PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset("rs"),
    "write": frozenset("cud"),
    "*": frozenset(PERMISSIONS),
}
_V1_NAMES = {perms: name for name, perms in V1_PERMISSIONS.items()}
# An FHIR resource type name, or `*` for all of them.
_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]+)$")
# What the FHIR API asks for, mapped to the permission letter it needs.
INTERACTIONS: dict[str, str] = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "search": "s",
    "search-type": "s",
    "search-system": "s",
    "history-type": "s",
    "history-system": "s",
    **{letter: letter for letter in PERMISSIONS},
}


@dataclass(frozen=True, slots=True)
class Scope:
    """One system scope: a resource type (or `*`) and the permissions on it."""

    resource_type: str
    permissions: frozenset[str]
    v1: bool = False

    def __str__(self) -> str:
        name = _V1_NAMES.get(self.permissions) if self.v1 else None
        if name is None:
            name = "".join(letter for letter in PERMISSIONS if letter in self.permissions)
        return f"system/{self.resource_type}.{name}"

    def covers(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions


def parse_scope(text: str) -> Scope | None:
    """One scope string as a Scope, or None when it is not a system scope this server understands."""
    match = _SCOPE.match(text)
    if match is None:
        return None
    resource_type, perms = match.groups()
    if perms in V1_PERMISSIONS:
        return Scope(resource_type, V1_PERMISSIONS[perms], v1=True)
    # v2: letters in the order c, r, u, d, s, each at most once, at least one.
    if "*" in perms or not _in_order(perms):
        return None
    return Scope(resource_type, frozenset(perms))


def parse_scopes(text: str) -> tuple[list[Scope], list[str]]:
    """Split a space-separated scope string into understood scopes and the strings that were not."""
    scopes: list[Scope] = []
    unknown: list[str] = []
    for word in text.split():
        parsed = parse_scope(word)
        if parsed is None:
            unknown.append(word)
        else:
            scopes.append(parsed)
    return scopes, unknown


def intersect(requested: Iterable[Scope], registered: Iterable[Scope]) -> list[Scope]:
    """What may be granted: each requested scope cut down to what the registered scopes allow.

    Requesting `system/*.rs` with `system/Observation.rs` registered grants `system/Observation.rs`;
    requesting `system/Observation.cruds` with `system/*.rs` registered grants `system/Observation.rs`.
    A granted scope keeps the syntax (v1 or v2) it was requested in when that syntax can express it.
    """
    registered = list(registered)
    granted: dict[str, Scope] = {}
    for want in requested:
        for have in registered:
            if want.resource_type == "*":
                resource_type = have.resource_type
            elif have.resource_type in ("*", want.resource_type):
                resource_type = want.resource_type
            else:
                continue
            permissions = want.permissions & have.permissions
            if not permissions:
                continue
            previous = granted.get(resource_type)
            if previous is not None:
                permissions = permissions | previous.permissions
            v1 = want.v1 and (previous is None or previous.v1)
            granted[resource_type] = Scope(resource_type, frozenset(permissions), v1)
    wildcard = granted.get("*")
    return [
        scope
        for scope in granted.values()
        if scope is wildcard or wildcard is None or not scope.permissions <= wildcard.permissions
    ]


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(str(scope) for scope in scopes)


def allows(scopes: Iterable[Scope], resource_type: str, interaction: str) -> bool:
    """True when some scope permits `interaction` on `resource_type` (a concrete type, not `*`)."""
    permission = INTERACTIONS.get(interaction)
    if permission is None:
        raise ValueError(f"unknown interaction {interaction!r}")
    if resource_type == "*":
        return False
    return any(scope.covers(resource_type, permission) for scope in scopes)


def _in_order(perms: str) -> bool:
    positions = [PERMISSIONS.find(letter) for letter in perms]
    return all(p >= 0 for p in positions) and positions == sorted(set(positions))
