"""Every rule of the contract has a violating case, for every kind it applies to."""

from __future__ import annotations

from tests.ingest.validation import test_assessment, test_patient, test_practitioner_referral, test_session
from tests.ingest.validation.records import RULES

ALL_CASES = [
    *test_session.CASES,
    *test_patient.CASES,
    *test_practitioner_referral.CASES,
    *test_assessment.CASES,
]

# Rules any record kind can break, and the rules that belong to one kind's fields.
COMMON = {"type", "required", "unknown-field", "id"}
BY_KIND = {
    "practitioner": COMMON | {"enum", "empty", "email", "npi-format", "npi-check-digit"},
    "patient": COMMON
    | {
        "enum",
        "empty",
        "date",
        "plausible-date",
        "email",
        "country",
        "language",
        "uri",
        "coding-pair",
        "code-format",
        "no-known-allergies-conflict",
        "duplicate-id",
    },
    "referral": COMMON | {"enum", "empty", "datetime", "datetime-offset", "code-format"},
    "assessment": COMMON
    | {
        "enum",
        "datetime",
        "datetime-offset",
        "range",
        "answers-missing",
        "answers-unknown",
        "total-mismatch",
    },
    "session": COMMON
    | {
        "enum",
        "empty",
        "datetime",
        "datetime-offset",
        "date",
        "range",
        "diastolic-below-systolic",
        "end-after-start",
        "end-required",
        "stop-reason-required",
        "dose-or-rate",
        "unit",
        "dose-total",
        "witness-required",
        "drug",
        "code-format",
        "duplicate-id",
        "answers-missing",
        "answers-unknown",
        "total-mismatch",
        "window",
        "series",
        "patient-mismatch",
    },
}


def _covered() -> dict[str, set[str]]:
    covered: dict[str, set[str]] = {}
    for param in ALL_CASES:
        kind, _, expected = param.values
        covered.setdefault(kind, set()).update(rule for _, rule in expected)
    return covered


def test_every_rule_has_a_case() -> None:
    assert set().union(*_covered().values()) == RULES
    assert set().union(*BY_KIND.values()) == RULES


def test_every_kind_has_a_case_for_each_of_its_rules() -> None:
    covered = _covered()
    for kind, rules in BY_KIND.items():
        assert rules <= covered[kind], (kind, rules - covered[kind])
