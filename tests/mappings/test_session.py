"""Session: Encounter, Procedure, Condition, CarePlan; what each status means."""

from __future__ import annotations

import pytest

from mappings.dispatch import map_record_dicts
from mappings.errors import UnknownReferenceError
from mappings.serialize import dict_bytes
from tests.mappings.conftest import make_ctx
from tests.mappings.helpers import by_type, codes, med, one, resources, session

SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    "status, encounter, procedure, performed",
    [
        ("planned", "planned", "preparation", False),
        ("in-progress", "in-progress", "in-progress", True),
        ("completed", "finished", "completed", True),
        ("stopped", "finished", "stopped", True),
        ("cancelled", "cancelled", "not-done", False),
    ],
)
def test_status_mapping(status: str, encounter: str, procedure: str, performed: bool) -> None:
    changes: dict = {"status": status}
    if status not in ("completed", "stopped"):
        changes["end"] = None
    if status == "stopped":
        changes["stop_reason"] = "BP 190/110"
    rec = {k: v for k, v in session(**changes).items() if v is not None}
    rs = resources("session", rec)
    assert one(rs, "Encounter")["status"] == encounter
    proc = one(rs, "Procedure")
    assert proc["status"] == procedure
    assert ("performedPeriod" in proc) == performed
    assert ("statusReason" in proc) == (status == "stopped")
    if status == "stopped":
        assert proc["statusReason"] == {"text": "BP 190/110"}


def test_encounter_elements() -> None:
    enc = one(resources("session", session(nurse_id="P-RN-1", location="Chair 2")), "Encounter")
    assert enc["class"]["code"] == "AMB"
    assert codes(enc["type"][0]) == [(SCT, "308335008")]
    assert [p["type"][0]["coding"][0]["code"] for p in enc["participant"]] == ["ATND", "PART"]
    assert enc["location"] == [{"location": {"display": "Chair 2"}}]
    assert enc["period"] == {"start": "2026-03-02T09:00:00-08:00", "end": "2026-03-02T10:00:00-08:00"}
    assert codes(enc["reasonCode"][0]) == [(ICD, "F33.2")]


def test_condition_is_encounter_diagnosis_with_translation_when_known() -> None:
    cond = one(
        resources(
            "session", session(indication={"system": "icd10cm", "code": "M79.7", "display": "Fibromyalgia"})
        ),
        "Condition",
    )
    assert codes(cond["code"]) == [(ICD, "M79.7"), (SCT, "203082005")]
    assert cond["code"]["text"] == "Fibromyalgia"
    assert "display" not in cond["code"]["coding"][0], "the sender's display is text, not the code's display"
    assert cond["category"][0]["coding"][0]["code"] == "encounter-diagnosis"


def test_procedure_code_follows_the_route() -> None:
    iv = one(resources("session", session(medications=[med()])), "Procedure")
    assert codes(iv["code"]) == [(SCT, "14152002")]
    nasal = one(
        resources(
            "session",
            session(
                medications=[
                    med(drug="esketamine", route="intranasal", dose={"value": 56, "unit": "mg"}, end=None)
                ]
            ),
        ),
        "Procedure",
    )
    assert codes(nasal["code"]) == [(SCT, "18629005")]


def test_careplan_is_identical_from_every_session_of_the_series() -> None:
    a = resources(
        "session", session(id="S-1", series={"number": 1, "session_number": 1, "planned_sessions": 6})
    )
    b = resources(
        "session",
        session(
            id="S-2",
            start="2026-03-05T09:00:00-08:00",
            end="2026-03-05T10:00:00-08:00",
            series={"number": 1, "session_number": 2, "planned_sessions": 6},
        ),
    )
    assert dict_bytes(one(a, "CarePlan")) == dict_bytes(one(b, "CarePlan"))
    proc = one(b, "Procedure")
    assert proc["basedOn"][0]["reference"] == f"CarePlan/{one(a, 'CarePlan')['id']}"
    assert proc["extension"][0]["valuePositiveInt"] == 2
    assert one(a, "CarePlan")["activity"][0]["detail"]["scheduledTiming"]["repeat"]["count"] == 6


def test_no_series_no_careplan() -> None:
    assert by_type(resources("session", session()), "CarePlan") == []


def test_unknown_practitioner_is_an_error_only_when_the_context_lists_them() -> None:
    with pytest.raises(UnknownReferenceError):
        resources("session", session(attending_id="P-NOBODY"))
    assert map_record_dicts("session", session(attending_id="P-NOBODY"), make_ctx(practitioners=None))


def test_note_is_markdown_escaped() -> None:
    proc = one(resources("session", session(note="*not* <b>bold</b>")), "Procedure")
    assert proc["note"] == [{"text": r"\*not\* \<b>bold\</b>"}]


def test_icd10cm_codes_are_upper_cased() -> None:
    cond = one(resources("session", session(indication={"system": "icd10cm", "code": "f43.10"})), "Condition")
    assert codes(cond["code"]) == [(ICD, "F43.10"), (SCT, "47505003")]
