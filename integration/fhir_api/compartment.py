"""Which patients a SMART grant may see: every patient, or the members of its Group.

The one place the compartment rule lives, so read, search, `_include`, history, `$everything`
and `$export` cannot disagree. A client restricted to a Group sees the members of the stored
Group resource with that id, and nothing when the Group is missing or deleted (fail closed).
Resources outside any patient compartment (Practitioner, Organization, Questionnaire, ...) are
visible to every client; a Group itself only to unrestricted clients and to its own members' client.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import Connection

from integration.auth.smart_clients import Grant
from integration.store.resources import ResourceRepository

_PATIENT_PREFIX = "Patient/"


@dataclass(frozen=True, slots=True)
class PatientScope:
    """`patients` None means unrestricted; otherwise the only patient ids the client may see."""

    patients: frozenset[str] | None
    group_id: str | None = None

    @property
    def unrestricted(self) -> bool:
        return self.patients is None

    def allows_patient(self, patient_id: str | None) -> bool:
        """Whether data in this patient's compartment (None: in no compartment) is visible."""
        return patient_id is None or self.patients is None or patient_id in self.patients

    def allows(self, resource_type: str, resource_id: str, patient_id: str | None) -> bool:
        """Whether one stored resource is visible; Groups reveal membership, so they are guarded too."""
        if resource_type == "Group" and self.patients is not None:
            return resource_id == self.group_id
        return self.allows_patient(patient_id)


UNRESTRICTED = PatientScope(None)


def patient_scope(conn: Connection, grant: Grant) -> PatientScope:
    if grant.group_id is None:
        return UNRESTRICTED
    return PatientScope(group_members(conn, grant.group_id), grant.group_id)


def group_members(conn: Connection, group_id: str) -> frozenset[str]:
    """Patient ids listed as current members of the stored Group; empty when it does not exist."""
    stored = ResourceRepository(conn).read("Group", group_id)
    if stored is None or stored.deleted or not stored.content:
        return frozenset()
    return member_ids(stored.content)


def member_ids(group_content: str) -> frozenset[str]:
    """Patient ids listed as current (not inactive) members in a Group's stored JSON."""
    members: set[str] = set()
    for member in orjson.loads(group_content).get("member", []):
        if member.get("inactive"):
            continue
        reference = member.get("entity", {}).get("reference", "")
        if reference.startswith(_PATIENT_PREFIX):
            members.add(reference[len(_PATIENT_PREFIX) :])
    return frozenset(members)
