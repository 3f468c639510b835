"""AdverseEvent: actual, local event code, R4 severity/outcome codes, ketamine suspect, narrative."""

from __future__ import annotations

from mappings.ids import resource_id
from tests.mappings.helpers import med, one, resources, session

AE = {
    "id": "AE-1",
    "kind": "hypertension",
    "severity": "severe",
    "onset": "2026-03-02T09:30:00-08:00",
    "action": "rate reduced <50%>",
    "outcome": "not-resolved",
}


def test_adverse_event_elements() -> None:
    rs = resources(
        "session",
        session(
            medications=[med(), med(id="M-2", drug="ondansetron", end=None, dose={"value": 4, "unit": "mg"})],
            adverse_events=[AE],
        ),
    )
    ae = one(rs, "AdverseEvent")
    assert ae["actuality"] == "actual"
    assert ae["event"]["coding"][0] == {
        "system": "https://clinic.example.org/fhir/CodeSystem/adverse-events",
        "code": "hypertension",
        "display": "Hypertension (blood pressure rise)",
    }
    assert (
        ae["severity"]["coding"][0]["system"]
        == "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
    )
    assert ae["severity"]["coding"][0]["code"] == "severe"
    assert ae["outcome"]["coding"][0]["code"] == "ongoing"
    assert ae["date"] == "2026-03-02T09:30:00-08:00"
    assert ae["suspectEntity"] == [
        {
            "instance": {
                "reference": f"MedicationAdministration/{resource_id('medication-administration', 'M-1')}"
            }
        }
    ]
    assert "rate reduced &lt;50%&gt;" in ae["text"]["div"]


def test_resolving_is_recovering_and_other_uses_description() -> None:
    ae = one(
        resources(
            "session",
            session(
                adverse_events=[
                    {
                        "id": "AE-2",
                        "kind": "other",
                        "severity": "mild",
                        "onset": "2026-03-02T09:30:00-08:00",
                        "outcome": "resolving",
                        "description": "Blurred vision",
                    }
                ]
            ),
        ),
        "AdverseEvent",
    )
    assert ae["outcome"]["coding"][0]["code"] == "recovering"
    assert ae["event"]["text"] == "Blurred vision"
    assert "suspectEntity" not in ae
