"""The `[destination.pull]` table of an EHR destination: what to pull from it, how often, and how to
recognise a referral addressed to the clinic. Read by `destinations._Reader`, every error naming the
destination and the field (e.g. `pull.clinic_references`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integration.sync.destinations import Schedule, _Reader

FIELDS = frozenset(
    {
        "referrals",
        "demographics",
        "overlap_seconds",
        "page_size",
        "clinic_references",
        "clinic_identifiers",
        "schedule",
    }
)
_REFERENCE = re.compile(
    r"^(Organization|Practitioner|PractitionerRole|HealthcareService)/[A-Za-z0-9\-.]{1,64}$"
)
_IDENTIFIER = re.compile(r"^[^|\s]+\|[^|\s]+$")


@dataclass(frozen=True)
class PullConfig:
    """What to pull. `clinic_references` / `clinic_identifiers` recognise the clinic among a
    ServiceRequest's performers (a relative reference such as `Organization/123` on the EHR, or a
    `system|value` identifier such as the clinic's NPI)."""

    referrals: bool = False
    demographics: bool = False
    overlap_seconds: int = 300
    page_size: int = 100
    clinic_references: tuple[str, ...] = ()
    clinic_identifiers: tuple[tuple[str, str], ...] = ()
    schedule: Schedule | None = None  # None: the destination's own schedule

    @property
    def resource_types(self) -> tuple[str, ...]:
        """Pulled types, in the order a run pulls them (patients first: a referral may need one)."""
        return tuple(
            t for t, on in (("Patient", self.demographics), ("ServiceRequest", self.referrals)) if on
        )


def read(reader: _Reader) -> PullConfig | None:
    """The destination's pull table, validated; None when it has none (or pulls nothing)."""
    if "pull" not in reader.entry:
        return None
    t = reader.table("pull", set(FIELDS))
    referrals = reader.get(t, "referrals", bool, False, "pull.referrals")
    demographics = reader.get(t, "demographics", bool, False, "pull.demographics")
    overlap = reader.get(t, "overlap_seconds", int, 300, "pull.overlap_seconds")
    if not 0 <= overlap <= 86400:
        raise reader.fail("pull.overlap_seconds", "must be between 0 and 86400")
    page_size = reader.get(t, "page_size", int, 100, "pull.page_size")
    if not 1 <= page_size <= 1000:
        raise reader.fail("pull.page_size", "must be between 1 and 1000")
    references = reader.get(t, "clinic_references", list, [], "pull.clinic_references")
    if not all(isinstance(r, str) and _REFERENCE.match(r) for r in references):
        raise reader.fail(
            "pull.clinic_references",
            "must be a list of relative references such as 'Organization/123' "
            "(Organization, Practitioner, PractitionerRole or HealthcareService)",
        )
    identifiers = reader.get(t, "clinic_identifiers", list, [], "pull.clinic_identifiers")
    if not all(isinstance(i, str) and _IDENTIFIER.match(i) for i in identifiers):
        raise reader.fail("pull.clinic_identifiers", "must be a list of 'system|value' strings")
    if referrals and not references and not identifiers:
        raise reader.fail(
            "pull.referrals",
            "needs pull.clinic_references or pull.clinic_identifiers to recognise referrals to the clinic",
        )
    schedule = reader.schedule(t.get("schedule"), "pull.schedule") if "schedule" in t else None
    if not (referrals or demographics):
        return None
    return PullConfig(
        referrals=referrals,
        demographics=demographics,
        overlap_seconds=overlap,
        page_size=page_size,
        clinic_references=tuple(references),
        clinic_identifiers=tuple(tuple(i.split("|", 1)) for i in identifiers),  # type: ignore[misc]
        schedule=schedule,
    )
