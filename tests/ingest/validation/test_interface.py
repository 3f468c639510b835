"""The interface the lead codes against: validate_record, references, patient_of, KINDS, and error hygiene."""

from __future__ import annotations

import pytest

from integration.ingest.problems import RecordError, Reference
from integration.ingest.validation import KINDS, patient_of, references, validate_record
from tests.ingest.validation.records import BASES, patient, problems, session


def test_kinds_are_in_dependency_order() -> None:
    assert KINDS == ("practitioner", "patient", "referral", "session", "assessment")


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_base_records_are_valid(kind: str) -> None:
    assert validate_record(kind, BASES[kind]()) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("record", [None, [], [{"id": "x"}], "MRN1", "", 1, 1.5, True, float("nan")])
def test_a_record_that_is_not_an_object_is_one_type_error(kind: str, record: object) -> None:
    errors = validate_record(kind, record)
    assert len(errors) == 1
    e = errors[0]
    assert (e.kind, e.id, e.path, e.rule) == (kind, None, "", "type")
    assert "JSON object" in e.message


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_object_lists_every_required_field(kind: str) -> None:
    found = problems(kind, {})
    assert ("id", "required") in found
    assert {rule for _, rule in found} == {"required"}
    assert all("." not in path for path, _ in found)


def _many_errors(kind: str) -> tuple[dict, set[tuple[str, str]]]:
    rec = BASES[kind]()
    rec["bogus"] = 1
    expected = {("bogus", "unknown-field")}
    if kind == "practitioner":
        rec.update(npi="1234567890", role="surgeon", given=[])
        expected |= {("npi", "npi-check-digit"), ("role", "enum"), ("given", "empty")}
    elif kind == "patient":
        rec.update(birth_date="1850-01-01", sex=None, no_known_allergies=True, email="x")
        rec["address"]["country"] = "ZZ"
        del rec["family"]
        expected |= {
            ("birth_date", "plausible-date"),
            ("sex", "type"),
            ("no_known_allergies", "no-known-allergies-conflict"),
            ("email", "email"),
            ("address.country", "country"),
            ("family", "required"),
        }
    elif kind == "referral":
        rec.update(authored="2026-01-01T10:00", reason={"system": "icd10cm", "code": "XYZ"})
        del rec["practitioner_id"]
        expected |= {
            ("authored", "datetime-offset"),
            ("reason.code", "code-format"),
            ("practitioner_id", "required"),
        }
    elif kind == "session":
        rec["status"] = "stopped"
        rec["vitals"][3]["diastolic"] = 300
        rec["vitals"][3]["spo2"] = 101
        rec["medications"][0]["total_mg"] = 70
        rec["medications"][1]["rate"] = {"value": 1, "unit": "mg/h"}
        rec["assessments"][1]["answers"]["q2"] = 7
        rec["assessments"][2]["patient_id"] = "someone-else"
        rec["adverse_events"][0]["onset"] = "2026-03-02T09:30"
        expected |= {
            ("stop_reason", "stop-reason-required"),
            ("vitals[3].diastolic", "range"),
            ("vitals[3].spo2", "range"),
            ("medications[0].total_mg", "dose-total"),
            ("medications[1]", "dose-or-rate"),
            ("medications[1].end", "end-required"),
            ("assessments[1].answers.q2", "range"),
            ("assessments[2].patient_id", "patient-mismatch"),
            ("adverse_events[0].onset", "datetime-offset"),
        }
    else:
        rec["answers"]["q1"] = 9
        rec["answers"]["q11"] = 0
        del rec["answers"]["q2"]
        rec["timing"] = "soon"
        expected |= {
            ("answers.q1", "range"),
            ("answers.q11", "answers-unknown"),
            ("answers.q2", "answers-missing"),
            ("timing", "enum"),
        }
    return rec, expected


@pytest.mark.parametrize("kind", KINDS)
def test_every_error_of_a_record_is_reported_at_once(kind: str) -> None:
    rec, expected = _many_errors(kind)
    assert problems(kind, rec) == expected
    errors = validate_record(kind, rec)
    assert len(errors) == len(expected)
    assert {e.id for e in errors} == {rec["id"]}


def test_errors_name_the_record_and_serialise() -> None:
    rec = session()
    rec["vitals"][3]["diastolic"] = 250
    [error] = validate_record("session", rec)
    assert isinstance(error, RecordError)
    assert error.as_dict() == {
        "kind": "session",
        "id": rec["id"],
        "path": "vitals[3].diastolic",
        "rule": "range",
        "message": "expected between 20 and 200, found 250",
    }


@pytest.mark.parametrize("rid", [None, 7, ["a"], {"a": 1}])
def test_error_id_is_none_when_the_id_is_missing_or_not_a_string(rid: object) -> None:
    rec = patient()
    if rid is None:
        del rec["id"]
    else:
        rec["id"] = rid
    assert {e.id for e in validate_record("patient", rec)} == {None}


def test_an_overlong_id_is_not_echoed_whole() -> None:
    rec = patient()
    rec["id"] = "M" * 100_000
    [error] = validate_record("patient", rec)
    assert error.rule == "id" and len(error.id) < 200 and len(error.message) < 200


def test_messages_say_expected_and_found_without_echoing_long_text() -> None:
    secret = "Patient disclosed a long history of " + "x" * 200
    rec = session()
    rec["status"] = secret
    rec["note"] = ["a", secret]
    rec["indication"]["code"] = secret
    rec["vitals"][0]["spo2"] = True
    messages = {e.path: e.message for e in validate_record("session", rec)}
    assert all(secret[:40] not in m for m in messages.values())
    statuses = "cancelled, completed, in-progress, planned, stopped"
    assert messages["status"].startswith(f"expected one of {statuses}")
    assert f"found a {len(secret)}-character string" in messages["status"]
    assert messages["note"] == "expected a string, found an array of 2 items"
    assert messages["vitals[0].spo2"] == "expected a number, found true"
    short = session()
    short["status"] = "done"
    assert validate_record("session", short)[0].message.endswith('found "done"')


def test_control_characters_and_surrogates_are_escaped_in_messages_and_paths() -> None:
    rec = patient()
    rec["sex"] = "f\x00\ud800"
    rec["bad\nkey"] = 1
    for e in validate_record("patient", rec):
        assert e.message.isprintable() and e.path.isprintable()
        e.message.encode("utf-8")
        e.path.encode("utf-8")


def test_unknown_kind_is_the_callers_mistake() -> None:
    for call in (
        lambda: validate_record("sessions", {}),
        lambda: references("sessions", {}),
        lambda: patient_of("sessions", {}),
    ):
        with pytest.raises(ValueError, match="unknown record kind"):
            call()


def test_references_of_each_kind() -> None:
    assert references("practitioner", BASES["practitioner"]()) == []
    p = patient()
    assert references("patient", p) == [Reference("referring_practitioner_id", "practitioner", "prac-0003")]
    del p["referring_practitioner_id"]
    assert references("patient", p) == []
    r = BASES["referral"]()
    assert references("referral", r) == [
        Reference("patient_id", "patient", r["patient_id"]),
        Reference("practitioner_id", "practitioner", r["practitioner_id"]),
    ]
    a = BASES["assessment"]()
    assert references("assessment", a) == [Reference("patient_id", "patient", a["patient_id"])]
    s = session()
    assert references("session", s) == [
        Reference("patient_id", "patient", s["patient_id"]),
        Reference("attending_id", "practitioner", s["attending_id"]),
        Reference("nurse_id", "practitioner", "prac-0002"),
        Reference("medications[0].performer_id", "practitioner", "prac-0002"),
        Reference("medications[0].witness_id", "practitioner", "prac-0001"),
        Reference("medications[1].performer_id", "practitioner", "prac-0002"),
    ]


def test_patient_of_each_kind() -> None:
    assert patient_of("practitioner", BASES["practitioner"]()) is None
    p = patient()
    assert patient_of("patient", p) == p["id"]
    for kind in ("session", "referral", "assessment"):
        rec = BASES[kind]()
        assert patient_of(kind, rec) == rec["patient_id"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "record",
    [
        {},
        {"id": 1, "patient_id": 2, "medications": "x"},
        {"medications": [1, None]},
    ],
)
def test_references_and_patient_of_tolerate_invalid_records(kind: str, record: dict) -> None:
    assert references(kind, record) == []
    assert patient_of(kind, record) is None
