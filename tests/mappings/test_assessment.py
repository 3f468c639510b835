"""Assessments: response, score with band and timing, and the PHQ-9 item 9 safety signal."""

from __future__ import annotations

import pytest

from mappings.errors import UnknownCodeError
from mappings.ids import resource_id
from tests.mappings.helpers import by_type, codes, one, phq9, resources, session


def _standalone(a: dict) -> list[dict]:
    return resources("assessment", {**a, "patient_id": "MRN-1"})


def test_phq9_item9_positive_raises_flag_and_interpretation() -> None:
    rs = _standalone(phq9(1, 1, 1, 1, 1, 1, 1, 1, 1))
    obs = one(rs, "Observation")
    interp = [c["coding"][0]["code"] for c in obs["interpretation"]]
    assert interp == ["phq9-mild", "phq9-item9-positive"]
    flag = one(rs, "Flag")
    assert flag["status"] == "active" and flag["code"]["coding"][0]["code"] == "phq9-item9-positive"
    assert flag["subject"] == obs["subject"]


def test_phq9_item9_zero_raises_nothing() -> None:
    rs = _standalone(phq9(3, 3, 3, 3, 3, 3, 3, 3, 0))
    assert by_type(rs, "Flag") == []
    assert [c["coding"][0]["code"] for c in one(rs, "Observation")["interpretation"]] == ["phq9-severe"]


def test_score_observation_elements() -> None:
    rs = _standalone(phq9(2, 2, 1, 3, 1, 2, 1, 0, 0, timing="baseline"))
    qr, obs = one(rs, "QuestionnaireResponse"), one(rs, "Observation")
    assert codes(obs["code"]) == [("http://loinc.org", "44261-6")]
    assert obs["valueQuantity"] == {
        "value": 12,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr['id']}"}]
    assert obs["category"][0]["coding"][0]["code"] == "survey"
    for r in (qr, obs):
        assert r["extension"][0]["valueCoding"]["code"] == "baseline"
        assert "encounter" not in r
    assert qr["questionnaire"] == "https://clinic.example.org/fhir/Questionnaire/phq9|1"
    assert qr["item"][0] == {
        "linkId": "q1",
        "answer": [
            {
                "valueCoding": {
                    "system": "http://loinc.org",
                    "code": "LA6570-1",
                    "display": "More than half the days",
                }
            }
        ],
    }
    assert qr["item"][-1] == {"linkId": "total", "answer": [{"valueInteger": 12}]}
    assert qr["author"] == obs["performer"][0] == {"reference": f"Patient/{resource_id('patient', 'MRN-1')}"}


def test_bpi_mean_is_a_decimal_without_band() -> None:
    rs = _standalone(
        {
            "id": "A-2",
            "instrument": "bpi_severity",
            "timing": "follow-up",
            "authored": "2026-03-02T08:55:00-08:00",
            "answers": {"q1": 7, "q2": 3, "q3": 5, "q4": 4},
        }
    )
    obs = one(rs, "Observation")
    assert obs["valueQuantity"]["value"] == 4.75 and "interpretation" not in obs
    assert one(rs, "QuestionnaireResponse")["item"][-1] == {
        "linkId": "total",
        "answer": [{"valueDecimal": 4.75}],
    }


def test_integer_items_for_instruments_without_answer_list() -> None:
    rs = _standalone(
        {
            "id": "A-3",
            "instrument": "madrs",
            "timing": "post",
            "authored": "2026-03-02T08:55:00-08:00",
            "answers": {f"q{i}": 3 for i in range(1, 11)},
        }
    )
    assert one(rs, "QuestionnaireResponse")["item"][0]["answer"] == [{"valueInteger": 3}]
    obs = one(rs, "Observation")
    assert obs["interpretation"][0]["coding"][0]["code"] == "madrs-moderate"
    assert "performer" not in obs, "MADRS is clinician-rated: the patient is not the performer"


def test_in_session_assessment_links_the_visit() -> None:
    rs = resources("session", session(assessments=[phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)]))
    enc = one(rs, "Encounter")
    assert one(rs, "QuestionnaireResponse")["encounter"] == {"reference": f"Encounter/{enc['id']}"}


def test_unknown_instrument_raises() -> None:
    with pytest.raises(UnknownCodeError):
        _standalone(
            {
                "id": "A",
                "instrument": "qids",
                "timing": "pre",
                "authored": "2026-03-02T08:55:00Z",
                "answers": {"q1": 1},
            }
        )
