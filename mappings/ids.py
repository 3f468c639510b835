"""Deterministic FHIR ids and clinic identifiers, so re-ingest and re-sync are upserts, never duplicates.

Every resource id is `uuid5(namespace(kind), name)`: the namespace is fixed per kind (uuid5 of the root below
and the kind name) and the name is the clinic id itself, or, for resources without one clinic id, the JSON
array of the parts that identify it. NEVER change ROOT, a kind name or a name recipe: every id already sent to
a destination would change.

| kind | resource | name (parts) | identifier value |
| --- | --- | --- | --- |
| patient | Patient | MRN | MRN |
| allergy | AllergyIntolerance | allergy id | allergy id |
| no-known-allergies | AllergyIntolerance | MRN | MRN |
| practitioner | Practitioner | practitioner id | practitioner id |
| practitioner-role | PractitionerRole | practitioner id | practitioner id |
| organization | Organization | clinic id (context) | clinic id |
| device | Device | system name (context) | system name |
| session | Encounter | session id | session id |
| session-procedure | Procedure | session id | session id |
| session-condition | Condition | session id | session id |
| series | CarePlan | [MRN, series number] | MRN/series-N |
| medication-administration | MedicationAdministration | medication id | medication id |
| medication | Medication (lot/expiry) | medication id | medication id |
| body-weight | Observation | session id | session id |
| vital-sign | Observation | [session id, UTC instant, measure] | session/instant/measure |
| assessment | QuestionnaireResponse | assessment id | assessment id |
| assessment-score | Observation | assessment id | assessment id |
| safety-flag | Flag | assessment id | assessment id |
| adverse-event | AdverseEvent | adverse event id | adverse event id |
| referral | ServiceRequest | referral id | referral id |
| provenance | Provenance | session id | session id |
| questionnaire | Questionnaire | instrument key | instrument key |
| codesystem | CodeSystem | local CodeSystem name | name |
| referrer-group | Group | referring practitioner id | practitioner id |

Identifier system: `{base}/sid/{kind}` (see `MappingContext.sid`). Provenance has no identifier element in R4.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from functools import cache, lru_cache

from mappings.context import MappingContext
from mappings.text import clean_text

ROOT = uuid.UUID("ae35b1eb-66fd-43bb-9367-15348f43a180")

RESOURCE_TYPE: dict[str, str] = {
    "patient": "Patient",
    "allergy": "AllergyIntolerance",
    "no-known-allergies": "AllergyIntolerance",
    "practitioner": "Practitioner",
    "practitioner-role": "PractitionerRole",
    "organization": "Organization",
    "device": "Device",
    "session": "Encounter",
    "session-procedure": "Procedure",
    "session-condition": "Condition",
    "series": "CarePlan",
    "medication-administration": "MedicationAdministration",
    "medication": "Medication",
    "body-weight": "Observation",
    "vital-sign": "Observation",
    "assessment": "QuestionnaireResponse",
    "assessment-score": "Observation",
    "safety-flag": "Flag",
    "adverse-event": "AdverseEvent",
    "referral": "ServiceRequest",
    "provenance": "Provenance",
    "questionnaire": "Questionnaire",
    "codesystem": "CodeSystem",
    "referrer-group": "Group",
}


# R4 resources whose identifier is 0..1 (a single Identifier, not a list).
_SINGLE_IDENTIFIER = frozenset({"AdverseEvent", "QuestionnaireResponse"})


@cache
def namespace(kind: str) -> uuid.UUID:
    """The fixed uuid5 namespace of one kind."""
    if kind not in RESOURCE_TYPE:
        raise KeyError(f"no id namespace for kind {kind!r}")
    return uuid.uuid5(ROOT, kind)


def _name(parts: tuple[str, ...]) -> str:
    return parts[0] if len(parts) == 1 else json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=8192)  # a session references its patient, visit and condition from every resource
def resource_id(kind: str, *parts: str) -> str:
    """The FHIR id of the `kind` resource identified by `parts` (usually one clinic id): RFC 4122 uuid5."""
    # Equals str(uuid.uuid5(namespace(kind), name)) without the UUID object round trips (tests check).
    sha1 = hashlib.sha1(namespace(kind).bytes + _name(parts).encode("utf-8"))  # noqa: S324 - RFC 4122 uuid5
    digest = bytearray(sha1.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def reference(kind: str, *parts: str) -> dict[str, str]:
    """A literal Reference to that resource: `{"reference": "Type/<uuid>"}`."""
    return {"reference": f"{RESOURCE_TYPE[kind]}/{resource_id(kind, *parts)}"}


def identifier(ctx: MappingContext, kind: str, value: str) -> dict[str, str]:
    """The clinic Identifier carried by the resource (system `{base}/sid/{kind}`)."""
    return {"system": ctx.sid(kind), "value": clean_text(value) or value}


def head(ctx: MappingContext, kind: str, profile: str, *parts: str, value: str | None = None) -> dict:
    """The first keys of every resource: type, deterministic id, profile, clinic identifier."""
    rtype = RESOURCE_TYPE[kind]
    out: dict = {"resourceType": rtype, "id": resource_id(kind, *parts), "meta": {"profile": [profile]}}
    if rtype == "Provenance":  # R4 Provenance has no identifier element
        return out
    ident = identifier(ctx, kind, value if value is not None else "/".join(parts))
    out["identifier"] = ident if rtype in _SINGLE_IDENTIFIER else [ident]
    return out
