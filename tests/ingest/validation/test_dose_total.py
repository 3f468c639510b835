"""`dose-total`: total_mg against the dose or rate converted to mg, hand-computed, with the 5% edge."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.ingest.validation.records import SESSION_START, ketamine, problems, session, ts

START = SESSION_START + timedelta(minutes=15)


def _session_with(med: dict, weight: float = 70.0) -> dict:
    rec = session()
    rec["weight_kg"] = weight
    rec["medications"] = [med]
    return rec


def _rate(value: float, unit: str, minutes: float, total: float) -> dict:
    end = ts(START + timedelta(minutes=minutes))
    med = ketamine(rate={"value": value, "unit": unit}, end=end, total_mg=total)
    del med["dose"]
    return med


def _verdict(med: dict, weight: float = 70.0) -> bool:
    found = problems("session", _session_with(med, weight))
    assert found <= {("medications[0].total_mg", "dose-total")}
    return not found


# 0.5 mg/kg x 70 kg = 35 mg; 4.9% and 5.1% either side of it.
@pytest.mark.parametrize(
    ("total", "ok"),
    [
        (35, True),
        (35.0 * 1.049, True),
        (35.0 * 0.951, True),
        (36.75, True),
        (33.25, True),
        (35.0 * 1.051, False),
        (35.0 * 0.949, False),
        (40, False),
        (0, False),
    ],
)
def test_weight_based_dose(total: float, ok: bool) -> None:
    assert _verdict(ketamine(total_mg=total)) is ok


@pytest.mark.parametrize(
    ("value", "unit", "total", "ok"),
    [
        (500, "mcg/kg", 35, True),  # 500 mcg/kg x 70 kg = 35 mg
        (500, "mcg/kg", 36.785, False),  # +5.1%
        (35, "mg", 36.715, True),  # +4.9%
        (35, "mg", 33.215, False),  # -5.1%
        (35000, "mcg", 35, True),
        (35000, "mcg", 37, False),
        (0.035, "g", 35, True),
        (0.035, "g", 0.035, False),  # grams are not milligrams
        (3.5, "mL", 35, True),  # no concentration: cannot be checked, accepted
        (3.5, "mL", 99999, True),
    ],
)
def test_fixed_doses_convert_to_mg(value: float, unit: str, total: float, ok: bool) -> None:
    assert _verdict(ketamine(dose={"value": value, "unit": unit}, total_mg=total)) is ok


@pytest.mark.parametrize(
    ("value", "unit", "minutes", "total", "ok"),
    [
        (0.75, "mg/kg/h", 40, 35, True),  # 0.75 mg/kg/h x 70 kg x 2/3 h = 35 mg
        (0.75, "mg/kg/h", 40, 35 * 1.049, True),
        (0.75, "mg/kg/h", 40, 35 * 1.051, False),
        (0.75, "mg/kg/h", 60, 35, False),  # one hour is 52.5 mg
        (750, "mcg/kg/h", 40, 35, True),
        (750, "mcg/kg/h", 40, 35 * 0.949, False),
        (52.5, "mg/h", 40, 35, True),
        (52.5, "mg/h", 40, 35 * 0.951, True),
        (52.5, "mg/h", 40, 52.5, False),
        (30, "mL/h", 40, 12345, True),  # cannot be checked, accepted
    ],
)
def test_rates_times_infusion_hours(value: float, unit: str, minutes: float, total: float, ok: bool) -> None:
    assert _verdict(_rate(value, unit, minutes, total)) is ok


def test_weight_is_the_sessions() -> None:
    assert _verdict(ketamine(total_mg=40), weight=80) is True  # 0.5 x 80
    assert _verdict(ketamine(total_mg=35), weight=80) is False


def test_no_total_is_not_checked() -> None:
    med = ketamine()
    del med["total_mg"]
    assert _verdict(med) is True


def test_unusable_inputs_skip_the_rule() -> None:
    broken_end = _rate(0.75, "mg/kg/h", 40, 999)
    broken_end["end"] = "later"
    assert problems("session", _session_with(broken_end)) == {("medications[0].end", "datetime")}
    reversed_times = _rate(0.75, "mg/kg/h", -5, 999)
    assert problems("session", _session_with(reversed_times)) == {("medications[0].end", "end-after-start")}
    bad_unit = ketamine(dose={"value": 0.5, "unit": "mg/lb"}, total_mg=999)
    assert problems("session", _session_with(bad_unit)) == {("medications[0].dose.unit", "unit")}
