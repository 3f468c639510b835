"""What a mapper needs besides the record: clinic URLs, Organization, known practitioners, its system.

The context is configuration, not data: everything a mapper writes from it (base URL, organization name) is
stable, so mapping the same record with the same context always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mappings.errors import UnknownReferenceError
from mappings.records import Address


@dataclass(frozen=True, slots=True)
class ClinicOrganization:
    """The clinic as a US Core Organization; `clinic_id` is its stable id inside the clinic's id space."""

    clinic_id: str
    name: str
    npi: str | None = None
    address: Address | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class KnownPractitioner:
    """A practitioner the store already knows (or that arrives in the same batch)."""

    id: str
    role: str


@dataclass(frozen=True, slots=True)
class MappingContext:
    """Clinic-wide settings for mapping.

    `base_url` (e.g. `https://clinic.example.org/fhir`, no trailing slash) roots every clinic URI:
    identifier systems `{base}/sid/{kind}`, local CodeSystems `{base}/CodeSystem/{name}`, local extensions
    `{base}/StructureDefinition/{name}` and Questionnaire canonicals `{base}/Questionnaire/{instrument}`.
    `practitioners`: None skips the check; otherwise every practitioner a record names must be in it.
    `system_name`: the clinic charting system, the Provenance agent (a Device).
    """

    base_url: str
    organization: ClinicOrganization
    system_name: str
    practitioners: Mapping[str, KnownPractitioner] | None = None
    questionnaire_version: str = "1"

    def __post_init__(self) -> None:
        if self.base_url.endswith("/") or "{" in self.base_url:
            raise ValueError("base_url must be an absolute URL without a trailing slash")
        if self.practitioners is not None:
            object.__setattr__(self, "practitioners", MappingProxyType(dict(self.practitioners)))

    def sid(self, kind: str) -> str:
        """The identifier system URI for one kind of clinic id."""
        return f"{self.base_url}/sid/{kind}"

    def check_practitioner(self, clinic_id: str) -> None:
        """Fail loudly when a record names a practitioner nobody sent."""
        if self.practitioners is not None and clinic_id not in self.practitioners:
            raise UnknownReferenceError(f"unknown practitioner id {clinic_id!r}")
