"""The summary arithmetic on hand-made resources: response, remission, change, exposure, safety, plan."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from integration.summaries.compute import SummaryError, compute_summary, judge_response
from integration.summaries.model import Clinic, Period
from integration.summaries.rules import _RULES, load_catalogue

BASE = "https://clinic.example.org/fhir"
PATIENT = "p1"
CLINIC = Clinic("Test Clinic", "+1-206-555-0100", "Organization/org1")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"


def patient() -> dict:
    return {"resourceType": "Patient", "id": PATIENT, "name": [{"given": ["Ada"], "family": "Testperson"}]}


def phq9(oid: str, when: str, value: float, timing: str | None = None) -> dict:
    obs = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "44261-6"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "{score}"},
    }
    if timing:
        obs["extension"] = [
            {
                "url": f"{BASE}/StructureDefinition/assessment-timing",
                "valueCoding": {"system": f"{BASE}/CodeSystem/assessment-timing", "code": timing},
            }
        ]
    return obs


def session(
    n: int, day: str, mg: float, per_kg: float, systolic: list[int], status: str = "completed"
) -> list:
    enc = f"e{n}"
    out = [
        {
            "resourceType": "Encounter",
            "id": enc,
            "status": "finished",
            "period": {"start": f"{day}T09:00:00-08:00", "end": f"{day}T11:00:00-08:00"},
            "participant": [
                {
                    "type": [{"coding": [{"code": "ATND"}]}],
                    "individual": {"reference": "Practitioner/doc"},
                }
            ],
        },
        {
            "resourceType": "Procedure",
            "id": f"proc{n}",
            "status": status,
            "encounter": {"reference": f"Encounter/{enc}"},
            "basedOn": [{"reference": "CarePlan/cp1", "display": f"Series 1, session {n} of 6"}],
            "reasonCode": [{"text": "Depression"}],
        },
        {
            "resourceType": "MedicationAdministration",
            "id": f"ma{n}",
            "status": "completed",
            "context": {"reference": f"Encounter/{enc}"},
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"}],
                "text": "Ketamine",
            },
            "effectivePeriod": {"start": f"{day}T09:15:00-08:00", "end": f"{day}T09:55:00-08:00"},
            "dosage": {
                "dose": {"value": mg, "code": "mg"},
                "extension": [
                    {
                        "url": f"{BASE}/StructureDefinition/dose-per-weight",
                        "valueQuantity": {"value": per_kg, "code": "mg/kg"},
                    }
                ],
            },
        },
    ]
    for i, value in enumerate(systolic):
        out.append(
            {
                "resourceType": "Observation",
                "id": f"bp{n}-{i}",
                "status": "final",
                "encounter": {"reference": f"Encounter/{enc}"},
                "effectiveDateTime": f"{day}T09:{10 + i * 10}:00-08:00",
                "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                        "valueQuantity": {"value": value},
                    },
                ],
            }
        )
    return out


def care_plan(count: int = 6) -> dict:
    return {
        "resourceType": "CarePlan",
        "id": "cp1",
        "title": "Treatment series 1",
        "activity": [{"detail": {"scheduledTiming": {"repeat": {"count": count}}}}],
    }


def summarize(resources, period=None, catalogue=None):
    return compute_summary(
        PATIENT,
        resources,
        period=period or Period(),
        clinic=CLINIC,
        catalogue=catalogue or load_catalogue(BASE),
        generated_at=NOW,
    )


def course(latest: float) -> list:
    return [
        patient(),
        care_plan(),
        {"resourceType": "Practitioner", "id": "doc", "name": [{"given": ["Grace"], "family": "Attending"}]},
        *session(1, "2026-02-02", 35.0, 0.5, [120, 142, 131]),
        *session(2, "2026-02-05", 42.0, 0.6, [118, 125]),
        *session(3, "2026-02-09", 21.0, 0.3, [150], status="stopped"),
        phq9("q0", "2026-02-02T08:50:00-08:00", 18, "baseline"),
        phq9("q1", "2026-02-05T08:50:00-08:00", 12, "pre"),
        phq9("q2", "2026-02-09T08:50:00-08:00", latest, "pre"),
    ]


def v_marked_catalogue(tmp_path, mark: str = "V"):
    rules = json.loads(_RULES.read_text())
    rules["instruments"]["phq9"]["remission"]["mark"] = mark
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    return load_catalogue(BASE, path)


def test_change_and_response_hand_worked():
    # Baseline 18, latest 9: change -9 points = -50.0 %, exactly the response threshold.
    s = summarize(course(latest=9))
    (o,) = s.outcomes
    assert (o.baseline.value, o.latest.value) == (18, 9)
    assert (o.change_points, o.change_percent) == (-9, -50.0)
    assert o.response.met is True
    assert o.latest.band == "Mild depression"
    assert o.baseline.band == "Moderately severe depression"


def test_response_just_short_of_half_is_no_response():
    # 18 -> 10: -8 points = -44.4 %.
    (o,) = summarize(course(latest=10)).outcomes
    assert (o.change_points, o.change_percent) == (-8, -44.4)
    assert o.response.met is False


def test_response_needs_a_positive_baseline():
    assert judge_response(0, 0, 50, "def.").met is None
    assert judge_response(None, 4, 50, "def.").met is None
    assert judge_response(10, 5, 50, "def.").met is True
    assert judge_response(10, 5.01, 50, "def.").met is False
    assert judge_response(10, 12, 50, "def.").met is False  # worse is no response


def test_remission_with_a_corroborated_threshold_names_its_source():
    (below,) = summarize(course(latest=4)).outcomes
    (at,) = summarize(course(latest=5)).outcomes
    assert below.remission.met is True  # PHQ-9 < 5
    assert at.remission.met is False  # 5 is not below 5
    assert "corroborated: ICSI guideline" in below.remission.definition


def test_remission_with_a_verified_threshold(tmp_path):
    catalogue = v_marked_catalogue(tmp_path)
    (below,) = summarize(course(latest=4), catalogue=catalogue).outcomes
    assert below.remission.met is True


def test_an_unverified_threshold_is_not_assessed(tmp_path):
    catalogue = v_marked_catalogue(tmp_path, mark="UNVERIFIED")
    (o,) = summarize(course(latest=2), catalogue=catalogue).outcomes
    assert o.remission.met is None
    assert "marks this threshold UNVERIFIED" in o.remission.definition


def test_exposure_safety_extremes_and_plan():
    s = summarize(course(latest=9))
    assert s.ketamine_total_mg == 98.0 and s.ketamine_infusions == 3
    assert [x.peak_systolic.value for x in s.sessions] == [142, 125, 150]
    assert s.sessions[2].status == "stopped"
    assert (s.plan.planned, s.plan.done, s.plan.remaining) == (6, 3, 3)
    assert s.attending.name == "Grace Attending"
    assert s.sessions[0].ketamine.duration_min == 40


def test_period_limits_sessions_and_latest_but_keeps_the_course_baseline():
    s = summarize(course(latest=9), period=Period(date(2026, 2, 4), date(2026, 2, 6)))
    assert [x.encounter for x in s.sessions] == ["Encounter/e2"]
    assert s.ketamine_total_mg == 42.0
    (o,) = s.outcomes
    assert o.baseline.value == 18 and o.latest.value == 12


def test_baseline_falls_back_to_the_earliest_score_before_the_first_infusion():
    resources = [r for r in course(latest=9) if r["id"] != "q0"]
    resources.append(phq9("early", "2026-02-02T08:40:00-08:00", 20))
    (o,) = summarize(resources).outcomes
    assert o.baseline.value == 20


def test_item9_flag_is_a_safety_signal():
    flag = {
        "resourceType": "Flag",
        "id": "f1",
        "status": "active",
        "code": {"coding": [{"code": "phq9-item9-positive"}], "text": "PHQ-9 item 9 above 0"},
        "period": {"start": "2026-02-05T08:50:00-08:00"},
    }
    s = summarize([*course(latest=9), flag])
    assert [x.reference for x in s.safety_signals] == ["Flag/f1"]


def test_no_patient_is_an_error():
    with pytest.raises(SummaryError):
        summarize([care_plan()])


def test_at_an_infusion_visit_only_the_last_score_before_the_infusion_counts():
    def at_visit(oid: str, when: str, value: float) -> dict:
        return {**phq9(oid, when, value), "encounter": {"reference": "Encounter/e2"}}

    resources = [r for r in course(latest=9) if r["id"] not in ("q1", "q2")]
    resources += [
        at_visit("early", "2026-02-05T08:40:00-08:00", 14),
        at_visit("pre", "2026-02-05T08:50:00-08:00", 12),
        at_visit("during", "2026-02-05T09:30:00-08:00", 2),  # infusion runs 09:15-09:55: acute effect
    ]
    (o,) = summarize(resources).outcomes
    assert [s.reference for s in o.scores] == ["Observation/q0", "Observation/pre"]
    assert o.latest.value == 12
