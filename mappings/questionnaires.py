"""The FHIR Questionnaire definitions of the outcome instruments, which the service stores and serves.

Profile: SDC Questionnaire, http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire (reference 4.3).
  Canonical URL `{base}/Questionnaire/{instrument}` (version from the context); `code` = the panel code; one
  item per question (`linkId` q1..qN, as in the clinic record, `code` the item code): `choice` with
  `answerOption.valueCoding` (LOINC answer codes, score in the `ordinalValue` extension) where the instrument
  has an answer list, `integer` otherwise; then a read-only `total` item carrying the total-score code.
Item text: the US Core PHQ-9 example's wording for PHQ-9; elsewhere a neutral "<instrument> item N", because
  other instruments' wording is licensed or unverified (reference 4.1).
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.assessment import questionnaire_url
from mappings.codes import Instrument, terminology
from mappings.context import MappingContext
from mappings.models import Resource, validate


def _item(inst: Instrument, i: int, ctx: MappingContext) -> dict:
    item = inst.items[i - 1]
    out: dict = {"linkId": f"q{i}", "code": [item.code.coding(ctx.base_url)], "text": item.text}
    if inst.answers is not None:
        out["type"] = "choice"
        out["answerOption"] = [
            {
                "extension": [{"url": profiles.ORDINAL_VALUE, "valueDecimal": s}],
                "valueCoding": c.coding(ctx.base_url),
            }
            for s, c in inst.answers
        ]
    else:
        out["type"] = "integer"
    out["required"] = True
    return out


def questionnaire_dict(key: str, ctx: MappingContext) -> dict:
    """One instrument's Questionnaire."""
    inst = terminology().instrument(key)
    out = ids.head(ctx, "questionnaire", profiles.SDC_QUESTIONNAIRE, key)
    out["url"] = questionnaire_url(ctx, key)
    out["version"] = ctx.questionnaire_version
    out["name"] = "".join(ch for ch in inst.title.title() if ch.isalnum())
    out["title"] = inst.title
    out["status"] = "active"
    out["subjectType"] = ["Patient"]
    if inst.panel is not None:
        out["code"] = [inst.panel.coding(ctx.base_url)]
    items = [_item(inst, i, ctx) for i in range(1, len(inst.items) + 1)]
    how = "mean of the items" if inst.scoring == "mean" else "sum of the items"
    items.append(
        {
            "linkId": "total",
            "code": [inst.total.coding(ctx.base_url)],
            "text": f"{inst.title} total score ({how})",
            "type": "decimal" if inst.scoring == "mean" else "integer",
            "readOnly": True,
        }
    )
    out["item"] = items
    return out


def questionnaire_dicts(ctx: MappingContext) -> list[dict]:
    """Every instrument's Questionnaire, in key order."""
    return [questionnaire_dict(k, ctx) for k in sorted(terminology().instruments)]


def to_fhir_questionnaires(ctx: MappingContext) -> list[Resource]:
    """All Questionnaire definitions (validated)."""
    return [validate(d) for d in questionnaire_dicts(ctx)]
