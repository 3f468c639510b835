"""Format checks on their own: NPI Luhn, SNOMED Verhoeff, ICD-10-CM shape, times, dates, ids, countries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.ingest.validation import formats


@pytest.mark.parametrize("npi", ["1234567893", "1245319599", "1003000126", "1497758544"])
def test_valid_npis(npi: str) -> None:
    assert formats.npi_problem(npi) is None


@pytest.mark.parametrize(
    ("npi", "rule"),
    [
        ("1234567890", "npi-check-digit"),
        ("1234567894", "npi-check-digit"),
        ("2234567893", "npi-check-digit"),
        ("123456789", "npi-format"),
        ("12345678930", "npi-format"),
        ("123456789a", "npi-format"),
        ("٠١٢٣٤٥٦٧٨٩", "npi-format"),
        (" 1234567893", "npi-format"),
    ],
)
def test_invalid_npis(npi: str, rule: str) -> None:
    assert formats.npi_problem(npi)[0] == rule


def test_npi_check_digit_is_luhn_over_80840_and_the_first_nine_digits() -> None:
    # CMS worked example: 123456789 -> 80840123456789 -> the check digit is 3.
    assert [d for d in "0123456789" if formats.luhn_ok("80840123456789" + d)] == ["3"]
    # Exactly one check digit fits any 9-digit body: a single changed digit is always caught.
    for body in ("100000000", "299999999", "154321987"):
        assert sum(formats.npi_problem(body + d) is None for d in "0123456789") == 1


@pytest.mark.parametrize(
    "code",
    [
        "35489007",
        "73595000",
        "111088007",
        "256349002",
        "387207008",
        "900000000000207008",
    ],
)
def test_valid_snomed_concept_ids(code: str) -> None:
    assert formats.snomed_problem(code) is None


@pytest.mark.parametrize(
    "code",
    [
        "35489008",  # check digit off by one
        "35489070",  # transposed digits: Verhoeff catches these
        "53489007",
        "035489007",  # leading zero
        "12345",  # too short
        "1234567890123456789",  # too long
        "3548900 7",
        "F33.2",
        "",
        "2159013012",  # a valid Verhoeff but partition 01: a description id, not a concept id
    ],
)
def test_invalid_snomed_concept_ids(code: str) -> None:
    assert formats.snomed_problem(code) is not None


def test_verhoeff_catches_every_single_digit_error_and_adjacent_transposition() -> None:
    code = "35489007"
    for i in range(len(code)):
        for d in "0123456789":
            if d != code[i]:
                assert not formats.verhoeff_ok(code[:i] + d + code[i + 1 :])
        if i + 1 < len(code) and code[i] != code[i + 1]:
            assert not formats.verhoeff_ok(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


@pytest.mark.parametrize(
    "code",
    [
        "F33.2",
        "F32.A",
        "M79.7",
        "G90.5x",
        "G90.50",
        "G90.511",
        "F43.10",
        "F41.1",
        "I10",
        "F32",
        "C4A.0",
        "M1A.0110",
        "Z3A.10",
        "T36.0X1A",
        "U07.1",
        "S72.001A",
        "f33.2",
    ],
)
def test_icd10cm_shapes_accepted(code: str) -> None:
    assert formats.icd10cm_problem(code) is None


@pytest.mark.parametrize(
    "code",
    [
        "F3.2",
        "33.2",
        "F33.",
        "F33.12345",
        "F332",
        "F33 .2",
        "FF3.2",
        "F33-2",
        "",
        "F33.2 ",
        "F33.2\n",
        "1F3.2",
        "F٣3.2",
    ],
)
def test_icd10cm_shapes_rejected(code: str) -> None:
    assert formats.icd10cm_problem(code) is not None


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("en-US", True),
        ("es-MX", True),
        ("en", True),
        ("zh-Hant-TW", True),
        ("sr-Latn", True),
        ("es-419", True),
        ("de-CH-1996", True),
        ("en-GB-oed", True),
        ("i-klingon", True),
        ("x-private", True),
        ("zh-yue-HK", True),
        ("en-US-u-ca-gregory", True),
        ("en-US-x-twain", True),
        ("EN-us", True),
        ("english", False),
        ("en_US", False),
        ("e", False),
        ("en-", False),
        ("123", False),
        ("en--US", False),
        ("en-US ", False),
        ("", False),
        ("ęn", False),
    ],
)
def test_language_tags(tag: str, ok: bool) -> None:
    assert (formats.language_problem(tag) is None) is ok


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("urn:oid:2.16.840.1.113883.4.1", True),
        ("https://hospital.example.org/mrn", True),
        ("urn:uuid:1234", True),
        ("http://x.org/sid#mrn", True),
        ("mrn", False),
        ("//hospital/mrn", False),
        ("urn:", False),
        ("1urn:x", False),
        ("https://x.org/a b", False),
        ("", False),
    ],
)
def test_identifier_systems(uri: str, ok: bool) -> None:
    assert (formats.uri_problem(uri) is None) is ok


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("a@example.org", True),
        ("a.b+c@mail.example.co.uk", True),
        ("josé@example.es", True),
        ("a@b", False),
        ("@example.org", False),
        ("a@@example.org", False),
        ("a b@example.org", False),
        ("a@example..org", False),
        ("a@example.org.", False),
        ("x" * 250 + "@example.org", False),
    ],
)
def test_emails(email: str, ok: bool) -> None:
    assert (formats.email_problem(email) is None) is ok


def test_country_list_is_the_official_alpha2_list() -> None:
    path = Path(formats.__file__).with_name("iso3166_alpha2.txt")
    first = path.read_text().splitlines()[0]
    assert first.startswith("#") and "ISO 3166-1" in first
    assert len(formats.COUNTRIES) == 249
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in formats.COUNTRIES)
    recent = {"SS", "CW", "SX", "BQ", "AX", "PS", "TW", "AQ", "UM"}
    assert {"US", "MX", "CA", "GB", "DE"} | recent <= formats.COUNTRIES
    assert not {"UK", "EU", "XK", "AN", "YU", "CS", "ZZ", "AA", "QM", "EL"} & formats.COUNTRIES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T09:15:00-08:00", "ok"),
        ("2026-03-02T09:15-08:00", "ok"),
        ("2026-03-02T09:15:00Z", "ok"),
        ("2026-03-02T09:15:00.123456789+05:30", "ok"),
        ("2024-02-29T23:59:59.9Z", "ok"),
        ("0001-01-01T00:00Z", "ok"),
        ("2026-03-02T09:15:00+23:59", "ok"),
        ("2026-03-02T09:15:00-00:00", "ok"),
        ("2026-03-02T09:15:00", "datetime-offset"),
        ("2026-03-02T09:15", "datetime-offset"),
        ("2026-03-02T09:15:00.5", "datetime-offset"),
        ("2026-13-02T09:15:00Z", "datetime"),
        ("2026-00-02T09:15:00Z", "datetime"),
        ("2026-02-29T09:15:00Z", "datetime"),
        ("2100-02-29T09:15:00Z", "datetime"),
        ("2026-04-31T09:15Z", "datetime"),
        ("2026-03-02T25:00:00Z", "datetime"),
        ("2026-03-02T24:00:00Z", "datetime"),
        ("2026-03-02T09:60:00Z", "datetime"),
        ("2026-03-02T09:15:60Z", "datetime"),
        ("2026-03-02T09:15:00+24:00", "datetime"),
        ("2026-03-02T09:15:00+05", "datetime"),
        ("2026-03-02T09:15:00+0500", "datetime"),
        ("2026-03-02 09:15:00Z", "datetime"),
        ("2026-03-02t09:15:00Z", "datetime"),
        ("2026-03-02T09:15:00z", "datetime"),
        ("2026-03-02", "datetime"),
        ("0000-01-01T00:00Z", "datetime"),
        ("2026-03-02T09:15:00.Z", "datetime"),
        ("2026-03-02T09:15:00,5Z", "datetime"),
        ("2026-03-02T9:15:00Z", "datetime"),
        ("\uff12026-03-02T09:15:00Z", "datetime"),
        ("2026-03-02T09:15:00.٣Z", "datetime"),
        ("2026-03-02T09:15:00Z ", "datetime"),
        ("", "datetime"),
        ("2026-03-02T09:15:00-08:00" * 3, "datetime"),
    ],
)
def test_datetimes(text: str, expected: str) -> None:
    parsed = formats.parse_instant(text)
    assert (parsed if isinstance(parsed, str) else "ok") == expected


_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    st.sampled_from(["auto", "minutes", "seconds", "milliseconds", "microseconds"]),
)
def test_instants_agree_with_python_datetime(moment: datetime, offset: int, spec: str) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    text = aware.isoformat(timespec=spec)
    truncated = datetime.fromisoformat(text)
    assert formats.parse_instant(text) == (truncated - _EPOCH) // timedelta(microseconds=1)
    if offset == 0:
        assert formats.parse_instant(text.replace("+00:00", "Z")) == formats.parse_instant(text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-03-02", True),
        ("2024-02-29", True),
        ("2000-02-29", True),
        ("1900-02-28", True),
        ("1900-02-29", False),
        ("2026-02-29", False),
        ("2026-13-01", False),
        ("2026-00-10", False),
        ("2026-01-32", False),
        ("2026-1-01", False),
        ("26-01-01", False),
        ("2026/01/01", False),
        ("2026-01-01T00:00Z", False),
        ("", False),
        ("0000-01-01", False),
    ],
)
def test_dates(text: str, ok: bool) -> None:
    assert (formats.parse_date(text) is not None) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("MRN100001", True),
        ("a", True),
        ("x" * 128, True),
        ("ünï-çødé id", True),
        ("a b", True),
        ("", False),
        (" a", False),
        ("a ", False),
        ("\ta", False),
        ("x" * 129, False),
        ("a\nb", False),
        ("a\x00", False),
        ("a\x7f", False),
        ("a\x85", False),
        ("\u00a0a", False),
    ],
)
def test_ids(text: str, ok: bool) -> None:
    assert (formats.id_problem(text) is None) is ok


@pytest.mark.parametrize(
    ("drug", "ok"),
    [
        ("ketamine", True),
        ("magnesium-sulfate", True),
        ("dexmedetomidine", True),
        ("rxnorm:6130", True),
        ("rxnorm:1", True),
        ("Ketamine", False),
        ("propofol", False),
        ("rxnorm:", False),
        ("rxnorm:61 30", False),
        ("rxnorm:6130x", False),
        ("rxnorm 6130", False),
        ("rxnorm:٦١٣٠", False),
        ("", False),
    ],
)
def test_drugs(drug: str, ok: bool) -> None:
    assert (formats.drug_problem(drug) is None) is ok
