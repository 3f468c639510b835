"""Referral: a ServiceRequest from the referring practitioner to the clinic."""

from __future__ import annotations

from mappings.ids import resource_id
from tests.mappings.helpers import one, resources


def test_referral_service_request() -> None:
    sr = one(
        resources(
            "referral",
            {
                "id": "R-1",
                "patient_id": "MRN-1",
                "practitioner_id": "P-REF-1",
                "authored": "2026-02-10T08:30:00-05:00",
                "reason": {"system": "snomed", "code": "203082005"},
                "note": "Try *ketamine*",
            },
        ),
        "ServiceRequest",
    )
    assert (sr["status"], sr["intent"]) == ("active", "order")
    assert sr["category"][0]["coding"][0]["code"] == "referral"
    assert sr["requester"] == {"reference": f"Practitioner/{resource_id('practitioner', 'P-REF-1')}"}
    assert sr["subject"] == {"reference": f"Patient/{resource_id('patient', 'MRN-1')}"}
    assert sr["performer"][0]["reference"].startswith("Organization/")
    assert [c["code"] for c in sr["reasonCode"][0]["coding"]] == ["203082005", "M79.7"]
    assert sr["authoredOn"] == "2026-02-10T08:30:00-05:00"
    assert sr["note"] == [{"text": r"Try \*ketamine\*"}]
