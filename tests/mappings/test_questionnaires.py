"""Questionnaire definitions: one per instrument, items as in the clinic record, canonical URLs."""

from __future__ import annotations

from mappings.codes import terminology
from mappings.questionnaires import questionnaire_dicts
from tests.mappings.conftest import make_ctx


def test_one_questionnaire_per_instrument() -> None:
    qs = {q["url"].rsplit("/", 1)[1]: q for q in questionnaire_dicts(make_ctx())}
    assert set(qs) == {"phq9", "gad7", "pcl5", "pain_nrs", "bpi_severity", "cadss", "madrs"}
    for key, q in qs.items():
        inst = terminology().instrument(key)
        assert [i["linkId"] for i in q["item"]] == [f"q{n}" for n in range(1, len(inst.items) + 1)] + [
            "total"
        ]
        assert q["item"][-1]["readOnly"] is True
        assert q["version"] == "1" and q["status"] == "active"


def test_phq9_answer_options_carry_scores() -> None:
    phq = next(q for q in questionnaire_dicts(make_ctx()) if q["url"].endswith("/phq9"))
    opts = phq["item"][0]["answerOption"]
    assert [(o["valueCoding"]["code"], o["extension"][0]["valueDecimal"]) for o in opts] == [
        ("LA6568-5", 0),
        ("LA6569-3", 1),
        ("LA6570-1", 2),
        ("LA6571-9", 3),
    ]
    assert opts[0]["extension"][0]["url"] == "http://hl7.org/fhir/StructureDefinition/ordinalValue"
    assert phq["code"][0]["code"] == "44249-1"


def test_licensed_instruments_ship_no_item_wording() -> None:
    bpi = next(q for q in questionnaire_dicts(make_ctx()) if q["url"].endswith("/bpi_severity"))
    assert [i["text"] for i in bpi["item"][:4]] == [f"BPI pain severity item {n}" for n in range(1, 5)]
