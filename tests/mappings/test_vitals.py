"""Vital signs: US Core profiles, BP panel, SpO2 double coding, non-vital extras, ids from the instant."""

from __future__ import annotations

import pytest

from mappings.errors import DuplicateIdError
from tests.mappings.helpers import by_type, codes, resources, session

LOINC = "http://loinc.org"
US = "http://hl7.org/fhir/us/core/StructureDefinition/"


def _obs(vitals: list[dict]) -> list[dict]:
    return [
        o
        for o in by_type(resources("session", session(vitals=vitals)), "Observation")
        if "vital-sign" in o["identifier"][0]["system"]
    ]


def test_bp_panel_with_components() -> None:
    [bp] = _obs([{"taken_at": "2026-03-02T09:30:00-08:00", "systolic": 150, "diastolic": 95}])
    assert bp["meta"]["profile"] == [US + "us-core-blood-pressure"]
    assert codes(bp["code"]) == [(LOINC, "85354-9")]
    assert [
        (codes(c["code"])[0][1], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
        for c in bp["component"]
    ] == [("8480-6", 150, "mm[Hg]"), ("8462-4", 95, "mm[Hg]")]
    assert "valueQuantity" not in bp


def test_lone_systolic_is_not_a_us_core_bp() -> None:
    [obs] = _obs([{"taken_at": "2026-03-02T09:30:00-08:00", "systolic": 150}])
    assert obs["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]
    assert codes(obs["code"]) == [(LOINC, "8480-6")]


def test_spo2_has_both_codings() -> None:
    [o] = _obs([{"taken_at": "2026-03-02T09:30:00-08:00", "spo2": 97}])
    assert codes(o["code"]) == [(LOINC, "2708-6"), (LOINC, "59408-5")]
    assert o["valueQuantity"]["code"] == "%"


@pytest.mark.parametrize(
    "measure, value, code, unit, category",
    [
        ("heart_rate", 80, "8867-4", "/min", "vital-signs"),
        ("resp_rate", 14, "9279-1", "/min", "vital-signs"),
        ("temp_c", 36.9, "8310-5", "Cel", "vital-signs"),
        ("etco2", 38, "19891-1", "mm[Hg]", None),
        ("pain_nrs", 4, "72514-3", "{score}", "survey"),
        ("sedation_moaas", 3, "moaas", "{score}", "exam"),
    ],
)
def test_single_measures(measure: str, value: float, code: str, unit: str, category: str | None) -> None:
    [o] = _obs([{"taken_at": "2026-03-02T09:30:00-08:00", measure: value}])
    assert codes(o["code"])[0][1] == code
    assert o["valueQuantity"] == {
        "value": value,
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": unit,
    }
    assert [c["coding"][0]["code"] for c in o.get("category", [])] == ([category] if category else [])


def test_same_instant_other_offset_same_id() -> None:
    [a] = _obs([{"taken_at": "2026-03-02T09:30:00-08:00", "heart_rate": 80}])
    [b] = _obs([{"taken_at": "2026-03-02T17:30:00+00:00", "heart_rate": 80}])
    assert a["id"] == b["id"]
    assert a["effectiveDateTime"] != b["effectiveDateTime"], "the recorded offset is kept in the value"


def test_two_sets_at_one_instant_are_refused() -> None:
    with pytest.raises(DuplicateIdError):
        _obs(
            [
                {"taken_at": "2026-03-02T09:30:00-08:00", "heart_rate": 80},
                {"taken_at": "2026-03-02T09:30:00-08:00", "heart_rate": 81},
            ]
        )


def test_body_weight_is_always_recorded() -> None:
    [w] = [
        o
        for o in by_type(resources("session", session()), "Observation")
        if o["meta"]["profile"] == [US + "us-core-body-weight"]
    ]
    assert w["valueQuantity"]["value"] == 70 and w["valueQuantity"]["code"] == "kg"
