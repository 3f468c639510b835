"""MedicationAdministration: codes, weight-based doses kept visible, R4 context, lots, waste."""

from __future__ import annotations

import pytest

from mappings.errors import UnknownCodeError
from mappings.ids import resource_id
from tests.mappings.helpers import by_type, codes, med, one, resources, session

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def _ma(**changes) -> dict:
    return one(
        resources("session", session(weight_kg=70.5, medications=[med(**changes)])),
        "MedicationAdministration",
    )


def test_weight_based_dose_keeps_figure_weight_and_absolute_amount() -> None:
    ma = _ma()
    dosage = ma["dosage"]
    assert dosage["dose"] == {"value": 35.25, "unit": "mg", "system": UCUM, "code": "mg"}
    assert dosage["extension"][0]["valueQuantity"] == {
        "value": 0.5,
        "unit": "mg/kg",
        "system": UCUM,
        "code": "mg/kg",
    }
    assert "0.5 mg/kg x 70.5 kg = 35.25 mg" in dosage["text"]
    assert ma["supportingInformation"] == [{"reference": f"Observation/{resource_id('body-weight', 'S-1')}"}]


def test_recorded_total_is_the_dose_given() -> None:
    dosage = _ma(total_mg=35)["dosage"]
    assert dosage["dose"]["value"] == 35
    assert "35.25 mg" in dosage["text"] and "recorded total 35 mg" in dosage["text"]


def test_mcg_is_ucum_ug() -> None:
    dosage = _ma(drug="dexmedetomidine", dose={"value": 0.5, "unit": "mcg/kg"})["dosage"]
    assert dosage["dose"]["code"] == "ug" and dosage["dose"]["unit"] == "mcg"
    assert dosage["extension"][0]["valueQuantity"]["code"] == "ug/kg"


def test_rate_is_kept_as_recorded_with_absolute_rate_in_text() -> None:
    ma = _ma(dose=None, rate={"value": 0.15, "unit": "mg/kg/h"})
    assert ma["dosage"]["rateQuantity"] == {
        "value": 0.15,
        "unit": "mg/kg/h",
        "system": UCUM,
        "code": "mg/kg/h",
    }
    assert "dose" not in ma["dosage"]
    assert "10.58 mg/h" in ma["dosage"]["text"]
    assert "supportingInformation" in ma


def test_absolute_dose_has_no_weight_link() -> None:
    ma = _ma(drug="ondansetron", dose={"value": 4, "unit": "mg"}, end=None, reason="nausea")
    assert ma["dosage"]["dose"]["value"] == 4 and "extension" not in ma["dosage"]
    assert "supportingInformation" not in ma
    assert ma["effectiveDateTime"] == "2026-03-02T09:10:00-08:00" and "effectivePeriod" not in ma
    assert ma["reasonCode"] == [{"text": "nausea"}] and "reasonReference" not in ma


def test_r4_links() -> None:
    ma = _ma()
    assert ma["context"] == {"reference": f"Encounter/{resource_id('session', 'S-1')}"}
    assert ma["partOf"] == [{"reference": f"Procedure/{resource_id('session-procedure', 'S-1')}"}]
    assert ma["reasonReference"] == [{"reference": f"Condition/{resource_id('session-condition', 'S-1')}"}]
    assert codes(ma["medicationCodeableConcept"]) == [(RX, "6130")]
    assert codes(ma["dosage"]["route"]) == [("http://snomed.info/sct", "47625008")]


def test_lot_makes_a_medication_and_waste_names_the_witness() -> None:
    rs = resources(
        "session",
        session(
            medications=[
                med(
                    lot_number="L1",
                    expiration_date="2027-01-31",
                    wasted={"value": 15, "unit": "mg"},
                    witness_id="P-ATT-1",
                )
            ]
        ),
    )
    product = one(rs, "Medication")
    assert product["batch"] == {"lotNumber": "L1", "expirationDate": "2027-01-31"}
    ma = one(rs, "MedicationAdministration")
    assert ma["medicationReference"]["reference"] == f"Medication/{product['id']}"
    assert "Wasted (drawn but not given): 15 mg" in ma["note"][0]["text"]
    assert ma["performer"][1]["function"]["coding"][0]["code"] == "witness"


def test_rxnorm_codes_pass_through() -> None:
    known = _ma(drug="rxnorm:6130")
    assert known["medicationCodeableConcept"]["text"] == "Ketamine"
    other = _ma(drug="rxnorm:1740467", dose={"value": 4, "unit": "mg"})
    assert codes(other["medicationCodeableConcept"]) == [(RX, "1740467")]
    assert "reasonReference" not in other


def test_local_drug_and_route() -> None:
    ma = _ma(drug="glycopyrrolate", route="im", dose={"value": 0.2, "unit": "mg"})
    assert codes(ma["medicationCodeableConcept"]) == [
        ("https://clinic.example.org/fhir/CodeSystem/drugs", "glycopyrrolate")
    ]
    assert codes(ma["dosage"]["route"]) == [("https://clinic.example.org/fhir/CodeSystem/routes", "im")]


@pytest.mark.parametrize(
    "changes", [{"drug": "propofol"}, {"route": "epidural"}, {"dose": {"value": 1, "unit": "mg/m2"}}]
)
def test_unknown_codes_raise(changes: dict) -> None:
    with pytest.raises(UnknownCodeError):
        _ma(**changes)


def test_not_done_is_not_a_suspect() -> None:
    rs = resources(
        "session",
        session(
            medications=[med(status="not-done")],
            adverse_events=[
                {"id": "AE-1", "kind": "nausea", "severity": "mild", "onset": "2026-03-02T09:20:00-08:00"}
            ],
        ),
    )
    assert one(rs, "MedicationAdministration")["status"] == "not-done"
    assert "suspectEntity" not in one(rs, "AdverseEvent")
    assert by_type(rs, "Medication") == []
