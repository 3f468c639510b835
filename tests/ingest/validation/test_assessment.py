"""Standalone assessments and the instrument table: items, ranges, sums and the BPI mean."""

from __future__ import annotations

import json

import pytest

from integration.ingest.validation.instruments import INSTRUMENTS, instruments_path, parse_instruments
from tests.ingest.validation.records import DELETE, apply, assessment, case, problems

A = "assessment"


def _unknown_key(rec: dict) -> None:
    rec["answers"]["q0"] = 1


def _padded_key(rec: dict) -> None:
    rec["answers"]["q01"] = rec["answers"].pop("q1")


def _no_answers(rec: dict) -> None:
    rec["answers"] = {}


CASES = [
    case(A, ("patient_id", DELETE), ("patient_id", "required")),
    case(A, ("instrument", DELETE), ("instrument", "required")),
    case(A, ("timing", DELETE), ("timing", "required")),
    case(A, ("authored", DELETE), ("authored", "required")),
    case(A, ("answers", DELETE), ("answers", "required")),
    case(A, ("instrument", "PHQ9"), ("instrument", "enum")),
    case(A, ("timing", "later"), ("timing", "enum")),
    case(A, ("authored", "2026-02-03T15:00:00"), ("authored", "datetime-offset")),
    case(A, ("authored", "2026-02-03T15:60:00Z"), ("authored", "datetime")),
    case(A, ("answers", "2,2,2"), ("answers", "type")),
    case(A, ("answers.q2", True), ("answers.q2", "type")),
    case(A, ("answers.q2", 1.0), ("answers.q2", "type")),
    case(A, ("answers.q9", 4), ("answers.q9", "range")),
    case(A, ("answers.q9", -1), ("answers.q9", "range")),
    case(A, ("answers.q4", DELETE), ("answers.q4", "answers-missing")),
    case(A, _no_answers, *{(f"answers.q{i}", "answers-missing") for i in range(1, 10)}),
    case(A, _unknown_key, ("answers.q0", "answers-unknown")),
    case(A, _padded_key, ("answers.q01", "answers-unknown"), ("answers.q1", "answers-missing")),
    case(A, ("answers.Q1", 0), ("answers.Q1", "answers-unknown")),
    case(A, ("total", 99), ("total", "total-mismatch")),
    case(A, ("total", "13"), ("total", "type")),
    case(A, ("total", None), ("total", "type")),
    case(A, ("score", 3), ("score", "unknown-field")),
    case(A, ("id", "\u0085a"), ("id", "id")),
    case(A, ("patient_id", ""), ("patient_id", "id")),
]


@pytest.mark.parametrize(("kind", "change", "expected"), CASES)
def test_violation_is_reported_exactly(kind: str, change: object, expected: frozenset) -> None:
    assert problems(kind, apply(kind, change)) == expected


def _filled(code: str, value: int) -> dict:
    rec = assessment()
    inst = INSTRUMENTS[code]
    rec.update(instrument=code, answers={k: value for k in inst.keys})
    rec["total"] = value * inst.items if inst.scoring == "sum" else value
    return rec


@pytest.mark.parametrize(
    ("code", "items", "low", "high"),
    [
        ("phq9", 9, 0, 3),
        ("gad7", 7, 0, 3),
        ("pcl5", 20, 0, 4),
        ("pain_nrs", 1, 0, 10),
        ("bpi_severity", 4, 0, 10),
        ("cadss", 23, 0, 4),
        ("madrs", 10, 0, 6),
    ],
)
def test_every_instrument_of_the_contract(code: str, items: int, low: int, high: int) -> None:
    inst = INSTRUMENTS[code]
    assert (inst.items, inst.min, inst.max) == (items, low, high)
    assert problems(A, _filled(code, high)) == set()
    assert problems(A, _filled(code, low)) == set()
    over = _filled(code, high)
    over["answers"][f"q{items}"] = high + 1
    assert problems(A, over) == {(f"answers.q{items}", "range")}
    missing = _filled(code, low)
    del missing["answers"][f"q{items}"]
    assert problems(A, missing) == {(f"answers.q{items}", "answers-missing")}
    extra = _filled(code, low)
    extra["answers"][f"q{items + 1}"] = low
    assert problems(A, extra) == {(f"answers.q{items + 1}", "answers-unknown")}


def test_the_table_is_exactly_the_contracts_instruments() -> None:
    assert set(INSTRUMENTS) == {"phq9", "gad7", "pcl5", "pain_nrs", "bpi_severity", "cadss", "madrs"}
    assert {i.scoring for i in INSTRUMENTS.values()} == {"sum", "mean"}
    assert INSTRUMENTS["bpi_severity"].scoring == "mean"
    raw = json.loads(instruments_path().read_text())
    assert raw["phq9"] == {"name": "PHQ-9", "items": 9, "min": 0, "max": 3, "scoring": "sum"}


@pytest.mark.parametrize(
    "table",
    [
        [],
        {},
        {"x": {"name": "X"}},
        {"x": {"name": "X", "items": 0, "min": 0, "max": 3, "scoring": "sum"}},
        {"x": {"name": "X", "items": 3, "min": 4, "max": 3, "scoring": "sum"}},
        {"x": {"name": "X", "items": 3, "min": 0, "max": 3, "scoring": "median"}},
    ],
)
def test_a_malformed_table_fails_loudly(table: object) -> None:
    with pytest.raises(ValueError, match=r"instruments\.json"):
        parse_instruments(table)


def _bpi(answers: list[int], total: object) -> dict:
    rec = assessment()
    rec.update(instrument="bpi_severity", answers={f"q{i}": a for i, a in enumerate(answers, 1)}, total=total)
    return rec


@pytest.mark.parametrize(
    ("answers", "total", "ok"),
    [
        ([5, 5, 5, 6], 5.25, True),
        ([5, 5, 5, 6], 5.2, True),  # the mean rounded to one decimal
        ([5, 5, 5, 6], 5.3, True),
        ([5, 5, 5, 6], 5.31, False),
        ([5, 5, 5, 6], 5.19, False),
        ([5, 5, 5, 6], 5, False),
        ([5, 5, 5, 6], 21, False),  # the sum is not the BPI severity score
        ([4, 4, 4, 4], 4, True),  # an integer mean may be sent as an integer
        ([0, 0, 0, 1], 0.3, True),
        ([0, 0, 0, 1], 0.2, True),
        ([10, 10, 10, 9], 9.8, True),
        ([10, 10, 10, 9], 9.7, True),
        ([10, 10, 10, 9], 9.69, False),
    ],
)
def test_bpi_severity_total_is_the_mean_within_005(answers: list[int], total: float, ok: bool) -> None:
    found = problems(A, _bpi(answers, total))
    assert found == (set() if ok else {("total", "total-mismatch")})


def test_sum_instruments_need_an_integer_total() -> None:
    rec = assessment()
    rec["total"] = float(rec["total"])
    assert problems(A, rec) == {("total", "type")}


def test_total_is_optional() -> None:
    rec = assessment()
    del rec["total"]
    assert problems(A, rec) == set()


def test_unknown_instrument_still_checks_answer_types_only() -> None:
    rec = assessment()
    rec["instrument"] = "hamd"
    rec["answers"]["q42"] = "x"
    assert problems(A, rec) == {("instrument", "enum"), ("answers.q42", "type")}
