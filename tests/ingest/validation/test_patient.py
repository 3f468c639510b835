"""Patient rules, including the allergies a patient nests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ingest.validation.records import DELETE, apply, case, patient, problems

P = "patient"


def _conflict(rec: dict) -> None:
    rec["no_known_allergies"] = True


def _duplicate_allergy(rec: dict) -> None:
    rec["allergies"][2]["id"] = "alg-1"


def _system_without_code(rec: dict) -> None:
    del rec["allergies"][0]["substance"]["code"]


def _code_without_system(rec: dict) -> None:
    del rec["allergies"][1]["substance"]["system"]


CASES = [
    case(P, ("given", "Ana"), ("given", "type")),
    case(P, ("given", ["Ana", 7]), ("given[1]", "type")),
    case(P, ("family", ["Ashgrove"]), ("family", "type")),
    case(P, ("birth_date", 19800101), ("birth_date", "type")),
    case(P, ("no_known_allergies", "yes"), ("no_known_allergies", "type")),
    case(P, ("consent.share_with_referrer", "true"), ("consent.share_with_referrer", "type")),
    case(P, ("consent.share_with_destinations", "all"), ("consent.share_with_destinations", "type")),
    case(P, ("address.line", "12 Alder St"), ("address.line", "type")),
    case(P, ("address", "12 Alder St, Seattle"), ("address", "type")),
    case(P, ("identifiers", {"system": "urn:x", "value": "1"}), ("identifiers", "type")),
    case(P, ("allergies[0]", "penicillin"), ("allergies[0]", "type")),
    case(P, ("family", DELETE), ("family", "required")),
    case(P, ("given", DELETE), ("given", "required")),
    case(P, ("birth_date", DELETE), ("birth_date", "required")),
    case(P, ("sex", DELETE), ("sex", "required")),
    case(P, ("id", DELETE), ("id", "required")),
    case(P, ("allergies[0].status", DELETE), ("allergies[0].status", "required")),
    case(P, ("allergies[1].substance", DELETE), ("allergies[1].substance", "required")),
    case(P, ("allergies[2].substance.text", DELETE), ("allergies[2].substance.text", "required")),
    case(P, ("identifiers[0].system", DELETE), ("identifiers[0].system", "required")),
    case(P, ("middle_name", "B"), ("middle_name", "unknown-field")),
    case(P, ("address.county", "King"), ("address.county", "unknown-field")),
    case(P, ("consent.share_with_insurer", False), ("consent.share_with_insurer", "unknown-field")),
    case(P, ("identifiers[0].type", "MR"), ("identifiers[0].type", "unknown-field")),
    case(P, ("allergies[0].substance.rxcui", "7980"), ("allergies[0].substance.rxcui", "unknown-field")),
    case(P, ("allergies[0].onset", "2020"), ("allergies[0].onset", "unknown-field")),
    case(P, ("sex", "F"), ("sex", "enum")),
    case(P, ("allergies[0].severity", "fatal"), ("allergies[0].severity", "enum")),
    case(P, ("allergies[0].status", "current"), ("allergies[0].status", "enum")),
    case(P, ("allergies[0].substance.system", "ndc"), ("allergies[0].substance.system", "enum")),
    case(P, ("given", []), ("given", "empty")),
    case(P, ("given", ["Ana", " "]), ("given[1]", "empty")),
    case(P, ("family", ""), ("family", "empty")),
    case(P, ("family", " \t"), ("family", "empty")),
    case(P, ("consent.share_with_destinations", ["a", ""]), ("consent.share_with_destinations[1]", "empty")),
    case(P, ("identifiers[0].value", ""), ("identifiers[0].value", "empty")),
    case(P, ("allergies[2].substance.text", " "), ("allergies[2].substance.text", "empty")),
    case(P, ("birth_date", "1980-02-30"), ("birth_date", "date")),
    case(P, ("birth_date", "1980-2-3"), ("birth_date", "date")),
    case(P, ("birth_date", "1980-01-01T00:00:00Z"), ("birth_date", "date")),
    case(P, ("birth_date", "1899-12-31"), ("birth_date", "plausible-date")),
    case(P, ("birth_date", "2999-01-01"), ("birth_date", "plausible-date")),
    case(P, ("email", "ana@"), ("email", "email")),
    case(P, ("email", "ana ashgrove@example.com"), ("email", "email")),
    case(P, ("email", "ana@example"), ("email", "email")),
    case(P, ("address.country", "USA"), ("address.country", "country")),
    case(P, ("address.country", "us"), ("address.country", "country")),
    case(P, ("address.country", "XK"), ("address.country", "country")),
    case(P, ("address.country", "UK"), ("address.country", "country")),
    case(P, ("language", "english"), ("language", "language")),
    case(P, ("language", "en_US"), ("language", "language")),
    case(P, ("language", "en-"), ("language", "language")),
    case(P, ("language", "spanish"), ("language", "language")),
    case(P, ("language", "en US"), ("language", "language")),
    case(P, ("identifiers[0].system", "hospital-mrn"), ("identifiers[0].system", "uri")),
    case(P, ("identifiers[0].system", "urn:oid: 1.2"), ("identifiers[0].system", "uri")),
    case(P, _conflict, ("no_known_allergies", "no-known-allergies-conflict")),
    case(P, _duplicate_allergy, ("allergies[2].id", "duplicate-id")),
    case(P, _system_without_code, ("allergies[0].substance", "coding-pair")),
    case(P, _code_without_system, ("allergies[1].substance", "coding-pair")),
    case(P, ("allergies[1].substance.code", "111088008"), ("allergies[1].substance.code", "code-format")),
    case(P, ("allergies[0].substance.code", "RX7980"), ("allergies[0].substance.code", "code-format")),
    case(P, ("id", " MRN1"), ("id", "id")),
    case(P, ("allergies[0].id", ""), ("allergies[0].id", "id")),
    case(P, ("referring_practitioner_id", ""), ("referring_practitioner_id", "id")),
    case(P, ("referring_practitioner_id", 3), ("referring_practitioner_id", "type")),
]


@pytest.mark.parametrize(("kind", "change", "expected"), CASES)
def test_violation_is_reported_exactly(kind: str, change: object, expected: frozenset) -> None:
    assert problems(kind, apply(kind, change)) == expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("birth_date", "1900-01-01"),
        ("birth_date", "2000-02-29"),
        ("language", "zh-Hant-TW"),
        ("language", "en"),
        ("address.country", "MX"),
        ("address", {}),
        ("no_known_allergies", False),
        ("allergies", []),
        ("identifiers[0].system", "https://hospital.example.org/mrn"),
        ("consent", {}),
        ("consent.share_with_destinations", []),
        ("phone", ""),
        ("email", "a.b+c@sub.example.co.uk"),
        ("allergies[1].substance", {"text": "peanut", "system": "snomed", "code": "256349002"}),
    ],
)
def test_valid_variants_are_accepted(path: str, value: object) -> None:
    assert problems(P, apply(P, (path, value))) == set()


def test_no_known_allergies_without_allergies_is_valid() -> None:
    rec = patient()
    del rec["allergies"]
    rec["no_known_allergies"] = True
    assert problems(P, rec) == set()


def test_birth_date_today_is_plausible_and_the_day_after_tomorrow_is_not() -> None:
    today = datetime.now(UTC).date()
    rec = patient()
    rec["birth_date"] = today.isoformat()
    assert problems(P, rec) == set()
    rec["birth_date"] = (today + timedelta(days=2)).isoformat()
    assert problems(P, rec) == {("birth_date", "plausible-date")}
