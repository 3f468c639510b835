"""Small builders for the unit tests: minimal valid records to modify one field at a time."""

from __future__ import annotations

import copy
from typing import Any

from mappings.dispatch import map_record_dicts
from tests.mappings.conftest import make_ctx

SESSION: dict[str, Any] = {
    "id": "S-1",
    "patient_id": "MRN-1",
    "status": "completed",
    "start": "2026-03-02T09:00:00-08:00",
    "end": "2026-03-02T10:00:00-08:00",
    "indication": {"system": "icd10cm", "code": "F33.2"},
    "weight_kg": 70,
    "attending_id": "P-ATT-1",
}


def session(**changes: Any) -> dict[str, Any]:
    s = copy.deepcopy(SESSION)
    s.update(changes)
    return s


def med(**changes: Any) -> dict[str, Any]:
    m = {
        "id": "M-1",
        "drug": "ketamine",
        "route": "iv",
        "dose": {"value": 0.5, "unit": "mg/kg"},
        "start": "2026-03-02T09:10:00-08:00",
        "end": "2026-03-02T09:50:00-08:00",
        "status": "completed",
        "performer_id": "P-RN-1",
    }
    m.update(changes)
    return m


def phq9(*answers: int, **changes: Any) -> dict[str, Any]:
    a = {
        "id": "A-1",
        "instrument": "phq9",
        "timing": "pre",
        "authored": "2026-03-02T08:55:00-08:00",
        "answers": {f"q{i}": v for i, v in enumerate(answers, 1)},
    }
    a.update(changes)
    return a


def resources(kind: str, record: dict[str, Any], **ctx_kw: Any) -> list[dict]:
    return map_record_dicts(kind, record, make_ctx(**ctx_kw))


def by_type(rs: list[dict], rtype: str) -> list[dict]:
    return [r for r in rs if r["resourceType"] == rtype]


def one(rs: list[dict], rtype: str) -> dict:
    found = by_type(rs, rtype)
    assert len(found) == 1, f"{len(found)} {rtype}"
    return found[0]


def codes(concept: dict) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept.get("coding", [])]
