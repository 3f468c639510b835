"""A referring physician's patients become one Group, so the referrer's system can `$export` just them.

Profile: R4 core, http://hl7.org/fhir/StructureDefinition/Group (Bulk Data 2.0 group-level export works
  on any actual Group). type person, actual true, identifier the referrer's clinic id under
  `{base}/sid/referrer-group`, managingEntity the referring Practitioner, one member per patient referred
  by them (by any current referral), sorted so the same referrals always give the same bytes. A Group whose
  referrals all moved elsewhere keeps existing with no members: clients registered for it then see nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

from mappings import ids, profiles
from mappings.context import MappingContext
from mappings.models import Resource, validate


def referrer_group_id(practitioner_id: str) -> str:
    """The Group id of one referrer (what `clients register --group` takes)."""
    return ids.resource_id("referrer-group", practitioner_id)


def referrer_group_dict(practitioner_id: str, patient_ids: Iterable[str], ctx: MappingContext) -> dict:
    """The Group of the patients (clinic MRNs) this practitioner referred."""
    out = ids.head(ctx, "referrer-group", profiles.GROUP, practitioner_id)
    out["active"] = True
    out["type"] = "person"
    out["actual"] = True
    out["name"] = f"Patients referred by practitioner {practitioner_id}"
    out["managingEntity"] = ids.reference("practitioner", practitioner_id)
    members = sorted({ids.resource_id("patient", p) for p in patient_ids})
    out["quantity"] = len(members)
    if members:
        out["member"] = [{"entity": {"reference": f"Patient/{m}"}} for m in members]
    return out


def to_fhir_referrer_group(practitioner_id: str, patient_ids: Iterable[str], ctx: MappingContext) -> Resource:
    """The referrer's Group, validated."""
    return validate(referrer_group_dict(practitioner_id, patient_ids, ctx))
