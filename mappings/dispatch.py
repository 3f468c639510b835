"""One entry point for the intake: map a clinic record of any kind to its FHIR resources.

`map_record(kind, record, ctx)` parses the raw (already valid) record into its typed form, runs the mapper of
that kind, checks the resources' ids are unique, and validates each resource once with the R4B models.
`map_record_dicts` stops before validation (for callers that validate and serialize themselves, see
serialize.map_record_bytes). `static_resources(ctx)` are the resources that come from configuration, not
records: the clinic Organization, its system Device, the Questionnaires and the local CodeSystems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mappings.assessment import assessment_dicts
from mappings.codesystems import codesystem_dicts
from mappings.context import MappingContext
from mappings.errors import DuplicateIdError, UnknownCodeError
from mappings.models import Resource, validate
from mappings.organization import device_dict, organization_dict
from mappings.patient import patient_dicts
from mappings.practitioner import practitioner_dicts
from mappings.questionnaires import questionnaire_dicts
from mappings.records import Assessment, Patient, Practitioner, Referral, Session
from mappings.referral import referral_dict
from mappings.session import session_dicts

_MAPPERS: dict[str, Callable[[Mapping[str, Any], MappingContext], list[dict]]] = {
    "patient": lambda r, ctx: patient_dicts(Patient.from_dict(r), ctx),
    "practitioner": lambda r, ctx: practitioner_dicts(Practitioner.from_dict(r), ctx),
    "session": lambda r, ctx: session_dicts(Session.from_dict(r), ctx),
    "assessment": lambda r, ctx: assessment_dicts(Assessment.from_dict(r), ctx),
    "referral": lambda r, ctx: [referral_dict(Referral.from_dict(r), ctx)],
}

KINDS = tuple(_MAPPERS)


def _unique(resources: list[dict]) -> list[dict]:
    seen: set[tuple[str, str]] = set()
    for r in resources:
        key = (r["resourceType"], r["id"])
        if key in seen:
            raise DuplicateIdError(
                f"two {key[0]} resources with id {key[1]} (e.g. two readings at one instant)"
            )
        seen.add(key)
    return resources


def map_record_dicts(kind: str, record: Mapping[str, Any], ctx: MappingContext) -> list[dict]:
    """The resources of one record as plain R4 JSON dicts (not yet validated)."""
    mapper = _MAPPERS.get(kind)
    if mapper is None:
        raise UnknownCodeError("record kind", kind)
    return _unique(mapper(record, ctx))


def map_record(kind: str, record: Mapping[str, Any], ctx: MappingContext) -> list[Resource]:
    """Map one record (patient, practitioner, session, assessment or referral) to validated R4B models."""
    return [validate(d) for d in map_record_dicts(kind, record, ctx)]


def static_dicts(ctx: MappingContext) -> list[dict]:
    """Organization, Device, Questionnaires and local CodeSystems, as dicts."""
    return _unique(
        [organization_dict(ctx), device_dict(ctx), *questionnaire_dicts(ctx), *codesystem_dicts(ctx)]
    )


def static_resources(ctx: MappingContext) -> list[Resource]:
    """The configuration-derived resources, validated."""
    return [validate(d) for d in static_dicts(ctx)]
