"""FHIR R4 from a hospital EHR -> clinic records (the reverse of the other modules), pure: no I/O.

Used by the EHR pull (integration/sync/pull.py), whose records then go through the same intake as the
clinic's own, so they are validated and stored the same way. Contract: /work/shared/spec/clinic-records.md.

- ServiceRequest (a referral addressed to the clinic) -> `referral` record with id
  `ehr-{destination}-{ServiceRequest.id}`; the reason is the first reasonCode coding in ICD-10-CM or
  SNOMED CT (systems from terminology/conditions.json); another system, or none, is an InboundError.
- The requester Practitioner -> `practitioner` record (role `referrer`) with id `npi-{NPI}`, created
  only when the clinic does not know it yet; a requester carrying the clinic's own practitioner
  identifier is that practitioner.
- Patient -> the demographic fields of the contract (given, family, birth_date, sex, phone, email,
  address, language), merged onto the clinic's current record: a field the EHR leaves out keeps the
  clinic's value, and nothing else (consent, allergies, identifiers, referrer) is ever touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.errors import MappingError

DEMOGRAPHIC_FIELDS = ("given", "family", "birth_date", "sex", "phone", "email", "address", "language")
ACTIVE_REFERRAL = "active"


# FHIR R4 id and resource type grammars: anything else in a pulled reference is never followed.
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


class InboundError(MappingError):
    """A pulled resource the clinic contract cannot take; names the FHIR field and the rule."""

    def __init__(self, path: str, rule: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.rule, self.message = path, rule, message


def clinic_id(resource: Mapping[str, Any], ctx: MappingContext, kind: str) -> str | None:
    """The clinic id a resource carries as an identifier in the clinic's `{base}/sid/{kind}` system."""
    found = clinic_ids(resource, ctx, kind)
    return found[0] if found else None


def clinic_ids(resource: Mapping[str, Any], ctx: MappingContext, kind: str) -> list[str]:
    """Every distinct clinic id a resource carries in the clinic's `{base}/sid/{kind}` system, in order."""
    system = ctx.sid(kind)
    found = resource.get("identifier") or []
    out: list[str] = []
    for ident in [found] if isinstance(found, dict) else found if isinstance(found, list) else []:
        value = ident.get("value") if isinstance(ident, dict) and ident.get("system") == system else None
        if isinstance(value, str) and value not in out:
            out.append(value)
    return out


def resource_id_of(resource: Mapping[str, Any]) -> str | None:
    """The resource's id when it follows the FHIR id grammar (it names the resource on its server)."""
    value = resource.get("id")
    return value if isinstance(value, str) and _ID.fullmatch(value) and value not in (".", "..") else None


def relative_reference(reference: object, base_url: str) -> tuple[str, str] | None:
    """(type, id) of a literal reference, relative or absolute under `base_url`; None otherwise."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    ref: str = reference["reference"]
    if "://" in ref:
        if not ref.startswith(base_url.rstrip("/") + "/"):
            return None  # on another server: never followed
        ref = ref[len(base_url.rstrip("/")) + 1 :]
    parts = ref.split("/")
    if len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "_history"):
        return None
    if _TYPE.fullmatch(parts[0]) and _ID.fullmatch(parts[1]) and parts[1] not in (".", ".."):
        return parts[0], parts[1]
    return None


def addressed_to_clinic(
    sr: Mapping[str, Any],
    base_url: str,
    references: Iterable[str],
    identifiers: Iterable[tuple[str, str]],
) -> bool:
    """Whether a performer of the ServiceRequest is the clinic, by reference or by identifier."""
    wanted_refs, wanted_ids = set(references), set(identifiers)
    for performer in sr.get("performer") or []:
        parts = relative_reference(performer, base_url)
        if parts is not None and "/".join(parts) in wanted_refs:
            return True
        ident = performer.get("identifier") if isinstance(performer, dict) else None
        if isinstance(ident, dict) and (ident.get("system"), ident.get("value")) in wanted_ids:
            return True
    return False


def referral_id(destination: str, sr: Mapping[str, Any]) -> str:
    """The clinic id of a pulled referral: stable for as long as the EHR keeps the ServiceRequest's id."""
    return f"ehr-{destination}-{sr['id']}"


def referral_record(
    sr: Mapping[str, Any], *, destination: str, patient_id: str, practitioner_id: str
) -> dict[str, Any]:
    """The clinic `referral` record of an active ServiceRequest (patient and referrer already resolved)."""
    if sr.get("status") != ACTIVE_REFERRAL:
        raise InboundError(
            "ServiceRequest.status", "status", f"only active referrals are taken, not {sr.get('status')!r}"
        )
    authored = sr.get("authoredOn")
    if not isinstance(authored, str) or "T" not in authored:
        raise InboundError(
            "ServiceRequest.authoredOn",
            "required",
            "a referral needs authoredOn as a date and time with an offset",
        )
    record: dict[str, Any] = {
        "id": referral_id(destination, sr),
        "patient_id": patient_id,
        "practitioner_id": practitioner_id,
        "authored": authored,
        "reason": _reason(sr),
    }
    notes = [
        n["text"] for n in sr.get("note") or [] if isinstance(n, dict) and isinstance(n.get("text"), str)
    ]
    if notes:
        record["note"] = "\n\n".join(notes)
    return record


def _reason(sr: Mapping[str, Any]) -> dict[str, str]:
    by_uri = {uri: token for token, uri in terminology().condition_systems.items()}
    seen: list[str] = []
    for concept in sr.get("reasonCode") or []:
        if not isinstance(concept, dict):
            continue
        for coding in concept.get("coding") or []:
            system = coding.get("system") if isinstance(coding, dict) else None
            if system in by_uri and isinstance(coding.get("code"), str):
                reason = {"system": by_uri[system], "code": coding["code"]}
                display = concept.get("text") or coding.get("display")
                if isinstance(display, str) and display.strip():
                    reason["display"] = display
                return reason
            if isinstance(system, str):
                seen.append(system)
    known = ", ".join(sorted(by_uri))
    found = f"found only {', '.join(sorted(set(seen)))}" if seen else "found none"
    raise InboundError(
        "ServiceRequest.reasonCode", "unknown-code", f"needs a coding in one of {known}; {found}"
    )


def practitioner_id(practitioner: Mapping[str, Any], ctx: MappingContext) -> str:
    """The clinic id of a requester: the clinic's own identifier, else `npi-{NPI}`."""
    own = clinic_id(practitioner, ctx, "practitioner")
    if own:
        return own
    npi = _npi(practitioner)
    if npi is None:
        raise InboundError(
            "ServiceRequest.requester", "referrer-unidentified", "the requester carries no NPI identifier"
        )
    return f"npi-{npi}"


def _npi(practitioner: Mapping[str, Any]) -> str | None:
    system = terminology().fhir_systems["npi"]
    for ident in practitioner.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == system and isinstance(ident.get("value"), str):
            return ident["value"]
    return None


def practitioner_record(practitioner: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    """A new `referrer` practitioner record from the requester (name, NPI, phone, email)."""
    name = _official_name(practitioner.get("name"), "Practitioner.name")
    record: dict[str, Any] = {"id": practitioner_id(practitioner, ctx), **name, "role": "referrer"}
    npi = _npi(practitioner)
    if npi:
        record["npi"] = npi
    record.update(_telecom(practitioner))
    return record


def demographics(patient: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's demographic fields the Patient states (absent ones are left out, never emptied)."""
    out: dict[str, Any] = {}
    if patient.get("name"):
        out.update(_official_name(patient["name"], "Patient.name"))
    if isinstance(patient.get("birthDate"), str):
        out["birth_date"] = patient["birthDate"]
    gender = patient.get("gender")
    if gender is not None:
        sexes = {fhir: clinic for clinic, fhir in terminology().statuses["gender"].items()}
        if gender not in sexes:
            raise InboundError(
                "Patient.gender", "unknown-code", f"{gender!r} is not an administrative gender"
            )
        out["sex"] = sexes[gender]
    out.update(_telecom(patient))
    address = _address(patient.get("address"))
    if address:
        out["address"] = address
    language = _language(patient.get("communication"))
    if language:
        out["language"] = language
    return out


def merge_demographics(current: Mapping[str, Any], patient: Mapping[str, Any]) -> dict[str, Any]:
    """The clinic's current patient record with the EHR's demographic fields laid over it."""
    return {**current, **demographics(patient), "id": current["id"]}


def _official_name(names: object, path: str) -> dict[str, Any]:
    usable = (
        [n for n in names or [] if isinstance(n, dict) and n.get("family")] if isinstance(names, list) else []
    )
    if not usable:
        raise InboundError(path, "required", "needs a name with a family name")
    chosen = next((n for n in usable if n.get("use") == "official"), usable[0])
    given = [g for g in chosen.get("given") or [] if isinstance(g, str) and g.strip()]
    if not given:
        raise InboundError(f"{path}.given", "required", "needs at least one given name")
    return {"given": given, "family": chosen["family"]}


def _telecom(resource: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for point in resource.get("telecom") or []:
        if (
            not isinstance(point, dict)
            or point.get("use") == "old"
            or not isinstance(point.get("value"), str)
        ):
            continue
        system = point.get("system")
        if system in ("phone", "email") and system not in out:
            out[system] = point["value"]
    return out


def _address(addresses: object) -> dict[str, Any] | None:
    usable = (
        [a for a in addresses or [] if isinstance(a, dict) and a.get("use") != "old"]
        if isinstance(addresses, list)
        else []
    )
    if not usable:
        return None
    chosen = next((a for a in usable if a.get("use") == "home"), usable[0])
    out: dict[str, Any] = {}
    if chosen.get("line"):
        out["line"] = list(chosen["line"])
    for fhir, clinic in (
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postal_code"),
        ("country", "country"),
    ):
        if isinstance(chosen.get(fhir), str):
            out[clinic] = chosen[fhir]
    return out or None


def _language(communication: object) -> str | None:
    bcp47 = terminology().fhir_systems["bcp47"]
    entries = (
        [c for c in communication or [] if isinstance(c, dict)] if isinstance(communication, list) else []
    )
    entries.sort(key=lambda c: not c.get("preferred"))
    for entry in entries:
        for coding in (entry.get("language") or {}).get("coding") or []:
            if (
                isinstance(coding, dict)
                and coding.get("system") == bcp47
                and isinstance(coding.get("code"), str)
            ):
                return coding["code"]
    return None
