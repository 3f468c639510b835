"""Practitioner with NPI, and a PractitionerRole for what they do."""

from __future__ import annotations

from tests.mappings.helpers import one, resources


def test_npi_identifier_and_clinic_role() -> None:
    rs = resources(
        "practitioner",
        {"id": "P-1", "given": ["Anna"], "family": "Okafor", "npi": "1234567893", "role": "nurse"},
    )
    p = one(rs, "Practitioner")
    assert {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"} in p["identifier"]
    role = one(rs, "PractitionerRole")
    assert role["code"][0]["coding"][0]["code"] == "nurse"
    assert role["organization"]["reference"].startswith("Organization/")
    assert role["practitioner"] == {"reference": f"Practitioner/{p['id']}"}


def test_referrer_practice_is_display_only() -> None:
    role = one(
        resources(
            "practitioner",
            {
                "id": "P-2",
                "given": "Dan",
                "family": "Weiss",
                "role": "referrer",
                "organization": "Cascade Psychiatry",
            },
        ),
        "PractitionerRole",
    )
    assert role["organization"] == {"display": "Cascade Psychiatry"}
