"""Typed records parse the contract's JSON form: aware datetimes, dates, tuples, cleaned text."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from mappings.errors import MappingError
from mappings.records import Assessment, Patient, Practitioner, Session
from tests.mappings.helpers import med, session


def test_session_parses_nested_parts() -> None:
    s = Session.from_dict(
        session(
            medications=[med()],
            vitals=[{"taken_at": "2026-03-02T09:30:00-08:00", "heart_rate": 80}],
            series={"number": 1, "session_number": 2, "planned_sessions": 6},
        )
    )
    assert s.start.utcoffset() == timedelta(hours=-8)
    assert isinstance(s.end, datetime)
    assert s.medications[0].dose is not None and s.medications[0].dose.unit == "mg/kg"
    assert s.vitals[0].heart_rate == 80 and s.vitals[0].systolic is None
    assert s.series is not None and s.series.planned_sessions == 6


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(MappingError):
        Session.from_dict(session(start="2026-03-02T09:00:00"))


def test_assessment_answers_in_item_order() -> None:
    answers = {f"q{i}": i % 5 for i in range(20, 0, -1)}
    a = Assessment.from_dict(
        {
            "id": "A",
            "instrument": "pcl5",
            "timing": "pre",
            "authored": "2026-03-02T09:00:00Z",
            "answers": answers,
        },
        patient_id="MRN-1",
    )
    assert a.answers == tuple(i % 5 for i in range(1, 21))
    assert a.patient_id == "MRN-1"


def test_patient_text_is_cleaned_and_blank_optionals_dropped() -> None:
    p = Patient.from_dict(
        {
            "id": "MRN-1",
            "given": ["Ann\x0bMarie", " "],
            "family": "Doe\x00",
            "birth_date": "1980-01-02",
            "sex": "female",
            "phone": "",
            "email": "  ",
        }
    )
    assert p.given == ("Ann Marie",)
    assert p.family == "Doe\ufffd"
    assert p.birth_date == date(1980, 1, 2)
    assert p.phone is None and p.email is None


def test_practitioner_given_may_be_one_string() -> None:
    assert Practitioner.from_dict({"id": "P", "given": "Ana", "family": "Ruiz", "role": "nurse"}).given == (
        "Ana",
    )


def test_records_are_frozen() -> None:
    s = Session.from_dict(session())
    with pytest.raises(AttributeError):
        s.status = "stopped"  # type: ignore[misc]
