"""An audit-log row as an R4 AuditEvent, so admins read the log with the same tools as the data.

Pure: the row comes in as a dict (the `audit_event` table's columns), the resource goes out as a dict.
R4 AuditEvent: http://hl7.org/fhir/R4/auditevent.html. The outcome is the HTTP status folded into R4's
four codes (0 success, 4 minor failure for a refusal or bad request, 8 serious failure for a server error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.ids import RESOURCE_TYPE

OBSERVER_NAME = "Horizon Integration"
_FHIR_ENTITY_TYPES = frozenset(RESOURCE_TYPE.values()) | {"Group"}


@cache
def _actions() -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    data = json.loads((Path(__file__).with_name("audit_actions.json")).read_text())
    exact = {k: v for k, v in data["actions"].items() if not k.endswith(".*")}
    prefixes = [(k[:-1], v) for k, v in data["actions"].items() if k.endswith(".*")]
    return data["default"], exact, prefixes


def _rule(action: str) -> dict[str, Any]:
    default, exact, prefixes = _actions()
    if action in exact:
        return exact[action]
    for prefix, rule in prefixes:
        if action.startswith(prefix):
            return rule
    return default


def _coding(pair: list[str], base: str) -> dict[str, str]:
    system_key, code = pair
    return terminology().fhir(system_key, code).coding(base)


def outcome_code(http_status: int) -> str:
    if http_status < 400:
        return "0"
    return "4" if http_status < 500 else "8"


def to_audit_event(row: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    """One AuditEvent (id `audit-<pk>`) from one audit-log row."""
    rule = _rule(row["action"])
    recorded: datetime = row["recorded_at"]
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": ctx.sid("actor"), "value": row["actor"] or "anonymous"}},
        "requestor": True,
    }
    if row.get("role"):
        agent["who"]["display"] = f"{row['actor'] or 'anonymous'} ({row['role']})"
    if row.get("remote_addr"):
        agent["network"] = {"address": row["remote_addr"], "type": "2"}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"audit-{row['pk']}",
        "type": _coding(rule["type"], ctx.base_url),
        "action": rule["action"],
        "recorded": recorded.isoformat(),
        "outcome": outcome_code(row["outcome"]),
        "outcomeDesc": f"HTTP {row['outcome']}; {row['action']}",
        "agent": [agent],
        "source": {
            "observer": {"display": OBSERVER_NAME},
            "type": [_coding(["security_source_type", "3"], ctx.base_url)],
        },
    }
    if "subtype" in rule:
        event["subtype"] = [_coding(rule["subtype"], ctx.base_url)]
    entities = _entities(row)
    if entities:
        event["entity"] = entities
    return event


def _entities(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if row.get("patient_id"):
        out.append({"what": {"reference": f"Patient/{row['patient_id']}"}})
    entity = row.get("entity")
    if entity and entity != f"Patient/{row.get('patient_id')}":
        kind, _, _ = entity.partition("/")
        if kind in _FHIR_ENTITY_TYPES:
            out.append({"what": {"reference": entity}})
        else:
            out.append({"name": entity})
    detail = row.get("detail")
    if detail:
        values = json.loads(detail) if isinstance(detail, str) else detail
        details = [{"type": str(k), "valueString": str(v)} for k, v in sorted(values.items())]
        if out:
            out[-1]["detail"] = details
        else:
            out.append({"name": row["action"], "detail": details})
    return out
