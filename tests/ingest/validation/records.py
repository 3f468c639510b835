"""Valid base records for the validation tests: synthetic ones, pinned where a test needs exact values."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pytest

from integration.ingest.synthetic import batch
from integration.ingest.validation import validate_record

# Every rule name the validator may answer with; tests check nothing else ever comes out.
RULES = frozenset(
    {
        "type",
        "required",
        "unknown-field",
        "enum",
        "empty",
        "datetime",
        "datetime-offset",
        "date",
        "range",
        "diastolic-below-systolic",
        "npi-format",
        "npi-check-digit",
        "end-after-start",
        "end-required",
        "stop-reason-required",
        "dose-or-rate",
        "unit",
        "dose-total",
        "witness-required",
        "drug",
        "code-format",
        "coding-pair",
        "country",
        "language",
        "uri",
        "email",
        "no-known-allergies-conflict",
        "duplicate-id",
        "answers-missing",
        "answers-unknown",
        "total-mismatch",
        "window",
        "series",
        "patient-mismatch",
        "plausible-date",
        "id",
    }
)

SESSION_START = datetime.fromisoformat("2026-03-02T09:00:00-08:00")


def ts(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@cache
def _batch() -> dict[str, list[dict]]:
    return batch(2026, 8, 3)


def practitioner() -> dict:
    rec = copy.deepcopy(next(p for p in _batch()["practitioners"] if p["role"] == "referrer"))
    assert {"npi", "organization", "endpoint", "phone", "email"} <= set(rec)
    return _checked("practitioner", rec)


def patient() -> dict:
    rec = copy.deepcopy(_batch()["patients"][0])
    rec.pop("no_known_allergies", None)
    rec.update(
        {
            "email": "ana.ashgrove@example.com",
            "address": {
                "line": ["12 Alder St", "Apt 3"],
                "city": "Seattle",
                "state": "WA",
                "postal_code": "98101",
                "country": "US",
            },
            "language": "es-MX",
            "identifiers": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "H123"}],
            "referring_practitioner_id": "prac-0003",
            "consent": {"share_with_referrer": True, "share_with_destinations": ["referrer-ehr-north"]},
            "allergies": [
                {
                    "id": "alg-1",
                    "substance": {"text": "penicillin", "system": "rxnorm", "code": "7980"},
                    "reaction": "hives",
                    "severity": "mild",
                    "status": "active",
                },
                {
                    "id": "alg-2",
                    "substance": {"text": "latex", "system": "snomed", "code": "111088007"},
                    "status": "inactive",
                },
                {"id": "alg-3", "substance": {"text": "adhesive tape"}, "status": "active"},
            ],
        }
    )
    return _checked("patient", rec)


def referral() -> dict:
    return _checked("referral", copy.deepcopy(_batch()["referrals"][0]))


def assessment() -> dict:
    rec = copy.deepcopy(_batch()["assessments"][0])
    assert rec["instrument"] == "phq9"
    return _checked("assessment", rec)


def ketamine(**changes: Any) -> dict:
    """0.5 mg/kg over 40 minutes at 70 kg: 35 mg."""
    start = SESSION_START + timedelta(minutes=15)
    med = {
        "id": "med-1",
        "drug": "ketamine",
        "route": "iv",
        "dose": {"value": 0.5, "unit": "mg/kg"},
        "start": ts(start),
        "end": ts(start + timedelta(minutes=40)),
        "status": "completed",
        "performer_id": "prac-0002",
        "site": "left antecubital",
        "lot_number": "KT12345",
        "expiration_date": "2027-01-31",
        "wasted": {"value": 15, "unit": "mg"},
        "witness_id": "prac-0001",
        "total_mg": 35.0,
    }
    med.update(changes)
    return med


def session() -> dict:
    """A completed synthetic session, pinned: 70 kg, 09:00-10:40 at -08:00, ketamine 0.5 mg/kg first."""
    rec = copy.deepcopy(next(s for s in _batch()["sessions"] if s["status"] == "completed"))
    start, end = SESSION_START, SESSION_START + timedelta(minutes=100)
    rec.update(
        {
            "start": ts(start),
            "end": ts(end),
            "weight_kg": 70.0,
            "nurse_id": "prac-0002",
            "series": {"number": 1, "session_number": 2, "planned_sessions": 6},
        }
    )
    rec["medications"] = [
        ketamine(),
        {
            "id": "med-2",
            "drug": "ondansetron",
            "route": "iv",
            "dose": {"value": 4, "unit": "mg"},
            "start": ts(start + timedelta(minutes=10)),
            "status": "completed",
            "performer_id": "prac-0002",
            "reason": "nausea prophylaxis",
            "total_mg": 4,
        },
    ]
    rec["vitals"] = [
        {
            "taken_at": ts(start + timedelta(minutes=5 + 7 * i)),
            "systolic": 120 + i,
            "diastolic": 75,
            "heart_rate": 70,
            "resp_rate": 14,
            "spo2": 98,
            "temp_c": 36.8,
            "etco2": 38,
            "pain_nrs": 2,
            "sedation_moaas": 5,
        }
        for i in range(12)
    ]
    rec["assessments"] = [
        {
            "id": "as-1",
            "instrument": "phq9",
            "timing": "pre",
            "authored": ts(start + timedelta(minutes=3)),
            "answers": {f"q{i}": 2 for i in range(1, 10)},
            "total": 18,
        },
        {
            "id": "as-2",
            "instrument": "gad7",
            "timing": "pre",
            "authored": ts(start + timedelta(minutes=4)),
            "answers": {f"q{i}": 1 for i in range(1, 8)},
            "total": 7,
            "patient_id": rec["patient_id"],
        },
        {
            "id": "as-3",
            "instrument": "cadss",
            "timing": "post",
            "authored": ts(end - timedelta(minutes=5)),
            "answers": {f"q{i}": 0 for i in range(1, 24)},
            "total": 0,
        },
    ]
    rec["adverse_events"] = [
        {
            "id": "ae-1",
            "kind": "nausea",
            "severity": "mild",
            "onset": ts(start + timedelta(minutes=30)),
            "action": "ondansetron 4 mg",
            "outcome": "resolved",
            "description": "brief nausea",
        }
    ]
    return _checked("session", rec)


BASES: dict[str, Callable[[], dict]] = {
    "practitioner": practitioner,
    "patient": patient,
    "referral": referral,
    "session": session,
    "assessment": assessment,
}


def _checked(kind: str, rec: dict) -> dict:
    errors = validate_record(kind, rec)
    assert errors == [], errors
    return rec


def problems(kind: str, rec: object) -> set[tuple[str, str]]:
    """(path, rule) of every error, after checking each error is well formed."""
    errors = validate_record(kind, rec)
    for e in errors:
        assert e.kind == kind and isinstance(e.path, str) and e.rule in RULES, e
        assert isinstance(e.message, str) and 0 < len(e.message) < 400, e
    return {(e.path, e.rule) for e in errors}


def dig(rec: Any, path: str) -> tuple[Any, Any]:
    """(container, key) named by a dotted path with list indices: `vitals[3].diastolic`."""
    parts: list[Any] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            parts.append(name)
        if rest:
            parts.extend(int(i) for i in rest.rstrip("]").split("]["))
    for key in parts[:-1]:
        rec = rec[key]
    return rec, parts[-1]


def with_(kind: str, path: str, value: Any) -> dict:
    """A valid base record of `kind` with the value at `path` set (or deleted when `value` is DELETE)."""
    rec = BASES[kind]()
    container, key = dig(rec, path)
    if value is DELETE:
        del container[key]
    else:
        container[key] = value
    return rec


DELETE = object()


Change = Callable[[dict], object]


def case(
    kind: str,
    change: tuple[str, Any] | Change,
    *expected: tuple[str, str],
    name: str | None = None,
) -> Any:
    """One violation: a base record of `kind`, one change (a path and value, or a function), exact errors."""
    label = name or (f"{change[0]}={change[1]!r}"[:60] if isinstance(change, tuple) else change.__name__)
    return pytest.param(kind, change, frozenset(expected), id=f"{kind}:{label}")


def apply(kind: str, change: tuple[str, Any] | Change) -> dict:
    if isinstance(change, tuple):
        return with_(kind, *change)
    rec = BASES[kind]()
    change(rec)
    return rec
