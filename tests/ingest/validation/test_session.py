"""Session rules, and the rules of what a session nests: medications, vitals, assessments, adverse events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.ingest.validation.records import DELETE, SESSION_START, apply, case, problems, session, ts

S = "session"
START = SESSION_START
END = SESSION_START + timedelta(minutes=100)
SLACK, SECOND = timedelta(hours=2), timedelta(seconds=1)


def at(minutes: float) -> str:
    return ts(START + timedelta(minutes=minutes))


def _drop_end_and_stop(rec: dict) -> None:
    rec["status"] = "stopped"
    rec["stop_reason"] = "patient request"
    del rec["end"]


def _stopped_without_reason(rec: dict) -> None:
    rec["status"] = "stopped"


def _stopped_blank_reason(rec: dict) -> None:
    rec["status"] = "stopped"
    rec["stop_reason"] = "   "


def _dose_and_rate(rec: dict) -> None:
    rec["medications"][0]["rate"] = {"value": 0.75, "unit": "mg/kg/h"}


def _neither_dose_nor_rate(rec: dict) -> None:
    del rec["medications"][0]["dose"]
    del rec["medications"][0]["total_mg"]


def _rate_without_end(rec: dict) -> None:
    med = rec["medications"][0]
    del med["dose"], med["end"], med["total_mg"]
    med["rate"] = {"value": 0.75, "unit": "mg/kg/h"}


def _wasted_without_witness(rec: dict) -> None:
    del rec["medications"][0]["witness_id"]


def _duplicate_medication(rec: dict) -> None:
    rec["medications"][1]["id"] = "med-1"


def _duplicate_assessment(rec: dict) -> None:
    rec["assessments"][2]["id"] = "as-1"


def _duplicate_adverse_event(rec: dict) -> None:
    rec["adverse_events"].append(dict(rec["adverse_events"][0]))


def _only_taken_at(rec: dict) -> None:
    rec["vitals"][4] = {"taken_at": at(30)}


def _missing_answer(rec: dict) -> None:
    del rec["assessments"][0]["answers"]["q3"]


def _unknown_answer(rec: dict) -> None:
    rec["assessments"][1]["answers"]["q10"] = 1


def _series_over(rec: dict) -> None:
    rec["series"]["session_number"] = 7


def _equal_diastolic(rec: dict) -> None:
    rec["vitals"][0]["diastolic"] = rec["vitals"][0]["systolic"]


CASES = [
    # type
    case(S, ("weight_kg", "70"), ("weight_kg", "type")),
    case(S, ("weight_kg", True), ("weight_kg", "type")),
    case(S, ("series.number", 1.0), ("series.number", "type")),
    case(S, ("vitals[0].pain_nrs", 3.5), ("vitals[0].pain_nrs", "type")),
    case(S, ("vitals[1].systolic", None), ("vitals[1].systolic", "type")),
    case(S, ("vitals[2]", []), ("vitals[2]", "type")),
    case(S, ("medications", {}), ("medications", "type")),
    case(S, ("medications[0].dose", 35), ("medications[0].dose", "type")),
    case(S, ("assessments[0].answers", [2] * 9), ("assessments[0].answers", "type")),
    case(S, ("assessments[0].answers.q1", "2"), ("assessments[0].answers.q1", "type")),
    case(S, ("adverse_events[0].severity", 2), ("adverse_events[0].severity", "type")),
    case(S, ("note", ["a"]), ("note", "type")),
    # required
    case(S, ("patient_id", DELETE), ("patient_id", "required")),
    case(S, ("attending_id", DELETE), ("attending_id", "required")),
    case(S, ("indication", DELETE), ("indication", "required")),
    case(S, ("indication.code", DELETE), ("indication.code", "required")),
    case(S, ("start", DELETE), ("start", "required")),
    case(S, ("weight_kg", DELETE), ("weight_kg", "required")),
    case(S, ("medications[0].route", DELETE), ("medications[0].route", "required")),
    case(S, ("medications[0].dose.unit", DELETE), ("medications[0].dose.unit", "required")),
    case(S, ("medications[1].performer_id", DELETE), ("medications[1].performer_id", "required")),
    case(S, ("vitals[1].taken_at", DELETE), ("vitals[1].taken_at", "required")),
    case(S, _only_taken_at, ("vitals[4]", "required")),
    case(S, ("assessments[0].answers", DELETE), ("assessments[0].answers", "required")),
    case(S, ("adverse_events[0].onset", DELETE), ("adverse_events[0].onset", "required")),
    case(S, ("series.session_number", DELETE), ("series.session_number", "required")),
    # unknown-field, at every level
    case(S, ("room", "3"), ("room", "unknown-field")),
    case(S, ("indication.version", "2026"), ("indication.version", "unknown-field")),
    case(S, ("series.cycle", 1), ("series.cycle", "unknown-field")),
    case(S, ("medications[0].dose.per", "kg"), ("medications[0].dose.per", "unknown-field")),
    case(S, ("medications[1].batch", "x"), ("medications[1].batch", "unknown-field")),
    case(S, ("vitals[3].map", 90), ("vitals[3].map", "unknown-field")),
    case(S, ("assessments[2].score", 3), ("assessments[2].score", "unknown-field")),
    case(S, ("adverse_events[0].grade", 1), ("adverse_events[0].grade", "unknown-field")),
    # enum
    case(S, ("status", "done"), ("status", "enum")),
    case(S, ("indication.system", "icd10"), ("indication.system", "enum")),
    case(S, ("medications[0].route", "oral"), ("medications[0].route", "enum")),
    case(S, ("medications[0].status", "given"), ("medications[0].status", "enum")),
    case(S, ("assessments[0].timing", "during"), ("assessments[0].timing", "enum")),
    case(S, ("assessments[0].instrument", "phq-9"), ("assessments[0].instrument", "enum")),
    case(S, ("adverse_events[0].kind", "fainting"), ("adverse_events[0].kind", "enum")),
    case(S, ("adverse_events[0].outcome", "fatal"), ("adverse_events[0].outcome", "enum")),
    # empty
    case(S, ("indication.code", ""), ("indication.code", "empty")),
    case(S, ("medications[0].drug", "  "), ("medications[0].drug", "empty")),
    case(S, ("status", ""), ("status", "empty")),
    # datetime, datetime-offset, date
    case(S, ("start", "2026-13-02T09:00:00-08:00"), ("start", "datetime")),
    case(S, ("end", "2026-03-02T25:00:00-08:00"), ("end", "datetime")),
    case(S, ("vitals[0].taken_at", "yesterday"), ("vitals[0].taken_at", "datetime")),
    case(S, ("medications[0].end", "2026-02-30T10:00:00-08:00"), ("medications[0].end", "datetime")),
    case(S, ("adverse_events[0].onset", "2026-03-02 09:30-08:00"), ("adverse_events[0].onset", "datetime")),
    case(S, ("assessments[1].authored", "2026-03-02T09:04:00+0800"), ("assessments[1].authored", "datetime")),
    case(S, ("start", "2026-03-02T09:00:00"), ("start", "datetime-offset")),
    case(S, ("vitals[3].taken_at", "2026-03-02T09:30"), ("vitals[3].taken_at", "datetime-offset")),
    case(S, ("medications[1].start", "2026-03-02T09:10:00.250"), ("medications[1].start", "datetime-offset")),
    case(S, ("medications[0].expiration_date", "2027-02-29"), ("medications[0].expiration_date", "date")),
    case(S, ("medications[0].expiration_date", "2027-01-31T0Z"), ("medications[0].expiration_date", "date")),
    # range
    case(S, ("weight_kg", 19.9), ("weight_kg", "range")),
    case(S, ("weight_kg", 350.5), ("weight_kg", "range")),
    case(S, ("weight_kg", float("nan")), ("weight_kg", "type")),
    case(S, ("vitals[0].systolic", 39), ("vitals[0].systolic", "range")),
    case(S, ("vitals[0].systolic", 301), ("vitals[0].systolic", "range")),
    case(S, ("vitals[0].diastolic", 19), ("vitals[0].diastolic", "range")),
    case(S, ("vitals[0].heart_rate", 251), ("vitals[0].heart_rate", "range")),
    case(S, ("vitals[0].heart_rate", 19.5), ("vitals[0].heart_rate", "range")),
    case(S, ("vitals[0].resp_rate", 3), ("vitals[0].resp_rate", "range")),
    case(S, ("vitals[0].resp_rate", 61), ("vitals[0].resp_rate", "range")),
    case(S, ("vitals[0].spo2", 101), ("vitals[0].spo2", "range")),
    case(S, ("vitals[0].spo2", 49), ("vitals[0].spo2", "range")),
    case(S, ("vitals[0].temp_c", 45.1), ("vitals[0].temp_c", "range")),
    case(S, ("vitals[0].temp_c", 29.9), ("vitals[0].temp_c", "range")),
    case(S, ("vitals[0].etco2", 4), ("vitals[0].etco2", "range")),
    case(S, ("vitals[0].etco2", 101), ("vitals[0].etco2", "range")),
    case(S, ("vitals[0].pain_nrs", 11), ("vitals[0].pain_nrs", "range")),
    case(S, ("vitals[0].pain_nrs", -1), ("vitals[0].pain_nrs", "range")),
    case(S, ("vitals[0].sedation_moaas", 6), ("vitals[0].sedation_moaas", "range")),
    case(S, ("medications[0].dose.value", 0), ("medications[0].dose.value", "range")),
    case(S, ("medications[0].wasted.value", -1), ("medications[0].wasted.value", "range")),
    case(S, ("medications[0].total_mg", -35), ("medications[0].total_mg", "range")),
    case(S, ("assessments[0].answers.q1", 4), ("assessments[0].answers.q1", "range")),
    case(S, ("assessments[2].answers.q23", 5), ("assessments[2].answers.q23", "range")),
    # cross-field
    case(S, _equal_diastolic, ("vitals[0].diastolic", "diastolic-below-systolic")),
    case(S, ("end", ts(START)), ("end", "end-after-start")),
    case(S, ("end", ts(START - timedelta(seconds=1))), ("end", "end-after-start")),
    case(S, ("medications[0].end", at(15)), ("medications[0].end", "end-after-start")),
    case(S, ("end", DELETE), ("end", "end-required")),
    case(S, _drop_end_and_stop, ("end", "end-required")),
    case(S, _rate_without_end, ("medications[0].end", "end-required")),
    case(S, _stopped_without_reason, ("stop_reason", "stop-reason-required")),
    case(S, _stopped_blank_reason, ("stop_reason", "stop-reason-required")),
    case(S, _dose_and_rate, ("medications[0]", "dose-or-rate")),
    case(S, _neither_dose_nor_rate, ("medications[0]", "dose-or-rate")),
    case(S, ("medications[0].dose.unit", "mg/kg/h"), ("medications[0].dose.unit", "unit")),
    case(S, ("medications[0].dose.unit", "MG"), ("medications[0].dose.unit", "unit")),
    case(S, ("medications[0].wasted.unit", "mg/kg"), ("medications[0].wasted.unit", "unit")),
    case(S, ("medications[0].total_mg", 40), ("medications[0].total_mg", "dose-total")),
    case(S, _wasted_without_witness, ("medications[0].witness_id", "witness-required")),
    case(S, ("medications[0].drug", "ketamin"), ("medications[0].drug", "drug")),
    case(S, ("medications[0].drug", "rxnorm:"), ("medications[0].drug", "drug")),
    case(S, ("medications[0].drug", "rxnorm:12a"), ("medications[0].drug", "drug")),
    case(S, ("medications[0].drug", "RxNorm:6130"), ("medications[0].drug", "drug")),
    case(S, ("indication.code", "F33-2"), ("indication.code", "code-format")),
    case(S, ("indication", {"system": "snomed", "code": "35489008"}), ("indication.code", "code-format")),
    case(S, ("indication", {"system": "snomed", "code": "F33.2"}), ("indication.code", "code-format")),
    case(S, ("indication", {"system": "icd10cm", "code": "35489007"}), ("indication.code", "code-format")),
    case(S, _series_over, ("series.session_number", "series")),
    case(S, ("series.number", 0), ("series.number", "series")),
    case(S, ("series.session_number", 0), ("series.session_number", "series")),
    case(S, ("series.planned_sessions", -1), ("series.planned_sessions", "series")),
    case(S, ("assessments[1].patient_id", "MRN999999"), ("assessments[1].patient_id", "patient-mismatch")),
    case(S, ("vitals[0].taken_at", ts(START - SLACK - SECOND)), ("vitals[0].taken_at", "window")),
    case(S, ("vitals[5].taken_at", ts(END + SLACK + SECOND)), ("vitals[5].taken_at", "window")),
    case(S, _duplicate_medication, ("medications[1].id", "duplicate-id")),
    case(S, _duplicate_assessment, ("assessments[2].id", "duplicate-id")),
    case(S, _duplicate_adverse_event, ("adverse_events[1].id", "duplicate-id")),
    case(S, _missing_answer, ("assessments[0].answers.q3", "answers-missing")),
    case(S, _unknown_answer, ("assessments[1].answers.q10", "answers-unknown")),
    case(S, ("assessments[0].total", 17), ("assessments[0].total", "total-mismatch")),
    case(S, ("assessments[0].total", 18.0), ("assessments[0].total", "type")),
    # id: the record's, its children's, and the ids it refers to
    case(S, ("id", ""), ("id", "id")),
    case(S, ("id", " S1"), ("id", "id")),
    case(S, ("id", "x" * 129), ("id", "id")),
    case(S, ("id", "S\n1"), ("id", "id")),
    case(S, ("id", 7), ("id", "type")),
    case(S, ("medications[0].id", "m1 "), ("medications[0].id", "id")),
    case(S, ("adverse_events[0].id", ""), ("adverse_events[0].id", "id")),
    case(S, ("assessments[0].id", "a\tb"), ("assessments[0].id", "id")),
    case(S, ("attending_id", ""), ("attending_id", "id")),
    case(S, ("medications[0].witness_id", "\x00"), ("medications[0].witness_id", "id")),
]


@pytest.mark.parametrize(("kind", "change", "expected"), CASES)
def test_violation_is_reported_exactly(kind: str, change: object, expected: frozenset) -> None:
    assert problems(kind, apply(kind, change)) == expected


ACCEPTED = [
    ("weight_kg", 70),
    ("vitals[0].systolic", 300.0),
    ("vitals[0].spo2", 100),
    ("vitals[0].spo2", 50),
    ("vitals[0].temp_c", 45),
    ("vitals[0].pain_nrs", 0),
    ("vitals[0].sedation_moaas", 0),
    ("start", "2026-03-02T17:00:00Z"),
    ("start", "2026-03-02T09:00-08:00"),
    ("start", "2026-03-02T09:00:00.5-08:00"),
    ("medications[0].drug", "rxnorm:6130"),
    ("medications[0].drug", "esketamine"),
    ("indication", {"system": "icd10cm", "code": "F32.A"}),
    ("indication", {"system": "snomed", "code": "73595000", "display": "Stress"}),
    ("assessments[1].patient_id", None),  # replaced below: equal patient ids are accepted
    ("medications[0].wasted.value", 0),
    ("series", {"number": 2, "session_number": 1}),
    ("status", "in-progress"),
    ("status", "cancelled"),
    ("location", ""),
    ("note", "x" * 5000),
]


@pytest.mark.parametrize(("path", "value"), ACCEPTED, ids=[f"{p}={v!r}"[:50] for p, v in ACCEPTED])
def test_valid_variants_are_accepted(path: str, value: object) -> None:
    rec = session()
    if value is None:
        value = rec["patient_id"]
    assert problems(S, apply(S, (path, value))) == set()


@pytest.mark.parametrize("kg", [20, 350, 20.0, 349.99])
def test_weight_edges_are_accepted(kg: float) -> None:
    rec = session()
    rec["weight_kg"] = kg
    rec["medications"][0]["total_mg"] = 0.5 * kg
    assert problems(S, rec) == set()


def test_lowest_blood_pressure_is_accepted() -> None:
    rec = session()
    rec["vitals"][0].update(systolic=40, diastolic=20)
    assert problems(S, rec) == set()


def _session_with_vital_at(moment: str, *, end: bool = True) -> dict:
    rec = session()
    rec["vitals"][0]["taken_at"] = moment
    if not end:
        rec["status"] = "in-progress"
        del rec["end"]
    return rec


@pytest.mark.parametrize(
    ("moment", "ok"),
    [
        (ts(START - timedelta(hours=2)), True),
        (ts(START - timedelta(hours=2, seconds=1)), False),
        ("2026-03-02T06:59:59.999999-08:00", False),
        ("2026-03-02T15:00:00Z", True),  # START - 2 h, written in UTC
        (ts(END + timedelta(hours=2)), True),
        ("2026-03-02T12:40:00.000001-08:00", False),
        (ts(END + timedelta(hours=2, seconds=1)), False),
    ],
)
def test_window_has_two_hours_of_slack_inclusive(moment: str, ok: bool) -> None:
    assert (problems(S, _session_with_vital_at(moment)) == set()) is ok


def test_window_without_end_has_only_a_lower_bound() -> None:
    assert problems(S, _session_with_vital_at(ts(END + timedelta(days=1)), end=False)) == set()
    late = _session_with_vital_at(ts(START - timedelta(hours=3)), end=False)
    assert problems(S, late) == {("vitals[0].taken_at", "window")}


def test_rules_skip_fields_that_are_themselves_broken() -> None:
    rec = session()
    rec["start"] = "2026-03-02T09:00:00"  # no offset: no window, no end-after-start
    rec["end"] = "soon"
    rec["vitals"][0]["systolic"] = "high"
    rec["weight_kg"] = "70"  # no dose-total
    rec["medications"][0]["total_mg"] = 99
    rec["assessments"][0]["answers"]["q1"] = 9  # no total-mismatch when an answer is out of range
    rec["assessments"][0]["total"] = 3
    assert problems(S, rec) == {
        ("start", "datetime-offset"),
        ("end", "datetime"),
        ("vitals[0].systolic", "type"),
        ("weight_kg", "type"),
        ("assessments[0].answers.q1", "range"),
    }


def test_session_without_optional_lists_is_valid() -> None:
    rec = session()
    for name in ("medications", "vitals", "assessments", "adverse_events", "series", "nurse_id", "note"):
        rec.pop(name, None)
    assert problems(S, rec) == set()
    rec.update(medications=[], vitals=[], assessments=[], adverse_events=[])
    assert problems(S, rec) == set()
