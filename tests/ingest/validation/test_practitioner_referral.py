"""Practitioner and referral rules."""

from __future__ import annotations

import pytest

from tests.ingest.validation.records import DELETE, apply, case, problems

PR = "practitioner"
RF = "referral"

FULL_WIDTH_NPI = "".join(chr(0xFF10 + int(d)) for d in "1234567893")  # digits to str.isdigit(), not to us

CASES = [
    case(PR, ("npi", "123456789"), ("npi", "npi-format")),
    case(PR, ("npi", "12345678931"), ("npi", "npi-format")),
    case(PR, ("npi", "12345-6789"), ("npi", "npi-format")),
    case(PR, ("npi", FULL_WIDTH_NPI), ("npi", "npi-format")),
    case(PR, ("npi", ""), ("npi", "npi-format")),
    case(PR, ("npi", "1234567890"), ("npi", "npi-check-digit")),
    case(PR, ("npi", "1234567839"), ("npi", "npi-check-digit")),
    case(PR, ("npi", 1234567893), ("npi", "type")),
    case(PR, ("role", "surgeon"), ("role", "enum")),
    case(PR, ("role", DELETE), ("role", "required")),
    case(PR, ("given", DELETE), ("given", "required")),
    case(PR, ("family", DELETE), ("family", "required")),
    case(PR, ("given", []), ("given", "empty")),
    case(PR, ("given", "Hana"), ("given", "type")),
    case(PR, ("family", "   "), ("family", "empty")),
    case(PR, ("email", "hana.example.org"), ("email", "email")),
    case(PR, ("organization", 12), ("organization", "type")),
    case(PR, ("endpoint", None), ("endpoint", "type")),
    case(PR, ("specialty", "psychiatry"), ("specialty", "unknown-field")),
    case(PR, ("id", ""), ("id", "id")),
    case(PR, ("id", "p\x7f1"), ("id", "id")),
    case(PR, ("id", None), ("id", "type")),
    case(RF, ("patient_id", DELETE), ("patient_id", "required")),
    case(RF, ("practitioner_id", DELETE), ("practitioner_id", "required")),
    case(RF, ("authored", DELETE), ("authored", "required")),
    case(RF, ("reason", DELETE), ("reason", "required")),
    case(RF, ("reason.system", DELETE), ("reason.system", "required")),
    case(RF, ("authored", "2025-12-07T13:19:00"), ("authored", "datetime-offset")),
    case(RF, ("authored", "2025-12-07"), ("authored", "datetime")),
    case(RF, ("reason.system", "ICD10CM"), ("reason.system", "enum")),
    case(RF, ("reason.code", ""), ("reason.code", "empty")),
    case(RF, ("reason", {"system": "icd10cm", "code": "F3.2"}), ("reason.code", "code-format")),
    case(RF, ("reason", {"system": "snomed", "code": "035489007"}), ("reason.code", "code-format")),
    case(RF, ("reason.display", 5), ("reason.display", "type")),
    case(RF, ("reason.text", "x"), ("reason.text", "unknown-field")),
    case(RF, ("urgency", "routine"), ("urgency", "unknown-field")),
    case(RF, ("note", {"text": "x"}), ("note", "type")),
    case(RF, ("id", "r" * 129), ("id", "id")),
    case(RF, ("practitioner_id", "prac 1 "), ("practitioner_id", "id")),
    case(RF, ("patient_id", ["MRN1"]), ("patient_id", "type")),
]


@pytest.mark.parametrize(("kind", "change", "expected"), CASES)
def test_violation_is_reported_exactly(kind: str, change: object, expected: frozenset) -> None:
    assert problems(kind, apply(kind, change)) == expected


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        (PR, "npi", "1234567893"),
        (PR, "npi", DELETE),
        (PR, "role", "other"),
        (PR, "given", ["Hana", "M."]),
        (RF, "reason", {"system": "icd10cm", "code": "G90.50"}),
        (RF, "reason", {"system": "snomed", "code": "73595000"}),
        (RF, "authored", "2025-12-07T21:19:00Z"),
        (RF, "reason.display", DELETE),
        (RF, "note", "x" * 3000),
    ],
)
def test_valid_variants_are_accepted(kind: str, path: str, value: object) -> None:
    assert problems(kind, apply(kind, (path, value))) == set()
