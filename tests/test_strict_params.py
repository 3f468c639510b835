"""Strict input checks: ASCII whole numbers that fit a 64-bit column, FHIR ids, instants in range."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from integration.strict_params import has_control, is_fhir_id, utc_in_range, whole_number


@pytest.mark.parametrize("text", ["", "²", "\u0663", "\uff11", "-1", "+1", " 1", "1\n", "1.0", "9" * 19])
def test_only_short_ascii_digit_strings_are_whole_numbers(text):
    assert whole_number(text) is None


def test_whole_numbers_and_their_digit_limit():
    assert whole_number("0") == 0 and whole_number("9" * 18) == 10**18 - 1
    assert whole_number("1234567890", max_digits=9) is None
    assert whole_number("123456789", max_digits=9) == 123456789


def test_fhir_ids_and_control_characters():
    assert is_fhir_id("a-B.9") and is_fhir_id("x" * 64)
    assert not any(is_fhir_id(t) for t in ("", "x" * 65, "a\x00b", "a b", "a/b", "a_b", "é", "a\n"))
    assert has_control("a\x00") and has_control("\x7f") and has_control("a\nb") and not has_control("a b é")


def test_instants_outside_years_1_to_9999_in_utc_are_refused():
    plus5 = timezone(timedelta(hours=5))
    assert utc_in_range(datetime(1, 1, 1, tzinfo=plus5)) is None
    assert utc_in_range(datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5)))) is None
    assert utc_in_range(datetime(2026, 1, 1, 5, tzinfo=plus5)) == datetime(2026, 1, 1, tzinfo=UTC)
