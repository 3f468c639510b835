"""Patient and allergies: coded negation only when recorded, nothing when nothing was recorded."""

from __future__ import annotations

import pytest

from mappings.errors import UnknownCodeError
from tests.mappings.helpers import by_type, codes, one, resources

PATIENT = {"id": "MRN-1", "given": ["Ana"], "family": "Ruiz", "birth_date": "1980-01-02", "sex": "female"}


def test_nothing_recorded_means_no_allergy_resource() -> None:
    assert by_type(resources("patient", PATIENT), "AllergyIntolerance") == []
    assert by_type(resources("patient", {**PATIENT, "no_known_allergies": False}), "AllergyIntolerance") == []


def test_no_known_allergies_is_the_coded_negation() -> None:
    nka = one(resources("patient", {**PATIENT, "no_known_allergies": True}), "AllergyIntolerance")
    assert codes(nka["code"]) == [("http://snomed.info/sct", "716186003")]
    assert nka["clinicalStatus"]["coding"][0]["code"] == "active"
    assert nka["verificationStatus"]["coding"][0]["code"] == "confirmed"


def test_recorded_allergies_win_over_a_stray_nka_flag() -> None:
    rs = resources(
        "patient",
        {
            **PATIENT,
            "no_known_allergies": True,
            "allergies": [{"id": "AL-1", "substance": {"text": "Latex"}, "status": "active"}],
        },
    )
    allergy = one(rs, "AllergyIntolerance")
    assert allergy["code"] == {"text": "Latex"}


def test_uncoded_substance_stays_text_and_severity_without_reaction_is_kept() -> None:
    allergy = one(
        resources(
            "patient",
            {
                **PATIENT,
                "allergies": [
                    {"id": "AL-1", "substance": {"text": "Sulfa"}, "severity": "severe", "status": "resolved"}
                ],
            },
        ),
        "AllergyIntolerance",
    )
    assert "coding" not in allergy["code"] and "reaction" not in allergy
    assert "severe" in allergy["note"][0]["text"]
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "resolved"


def test_unknown_substance_system_raises() -> None:
    with pytest.raises(UnknownCodeError):
        resources(
            "patient",
            {
                **PATIENT,
                "allergies": [
                    {
                        "id": "AL-1",
                        "substance": {"text": "X", "system": "ndc", "code": "1"},
                        "status": "active",
                    }
                ],
            },
        )


def test_patient_elements() -> None:
    p = one(
        resources(
            "patient",
            {**PATIENT, "language": "es-MX", "identifiers": [{"system": "urn:oid:1.2.3", "value": "H-1"}]},
        ),
        "Patient",
    )
    assert p["identifier"][1] == {"system": "urn:oid:1.2.3", "value": "H-1"}
    assert p["communication"][0]["language"]["coding"] == [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]
    assert p["gender"] == "female" and p["birthDate"] == "1980-01-02"
