"""Reverse mapping (EHR FHIR -> clinic records): referrals, referrers, demographics merged, codes checked."""

from __future__ import annotations

import pytest

from integration.ingest.validation import validate_record
from mappings import inbound
from mappings.inbound import InboundError
from tests.mappings.conformance import BASE

EHR = "https://ehr.example.org/fhir"
NPI = "http://hl7.org/fhir/sid/us-npi"


def _sr(**changes):
    sr = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "meta": {"versionId": "3", "lastUpdated": "2026-03-02T10:00:00Z"},
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p-9"},
        "requester": {"reference": "Practitioner/dr-1"},
        "performer": [{"reference": f"{EHR}/Organization/clinic-7"}],
        "authoredOn": "2026-03-01T09:15:00-08:00",
        "reasonCode": [
            {
                "coding": [
                    {"system": "http://example.org/local", "code": "X"},
                    {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.2"},
                ],
                "text": "Major depressive disorder, recurrent severe",
            }
        ],
        "note": [{"text": "Failed two SSRIs."}],
    }
    sr.update(changes)
    return sr


def test_referral_record_is_a_valid_clinic_referral():
    record = inbound.referral_record(_sr(), destination="north", patient_id="MRN-1", practitioner_id="npi-1")
    assert record == {
        "id": "ehr-north-sr-1",
        "patient_id": "MRN-1",
        "practitioner_id": "npi-1",
        "authored": "2026-03-01T09:15:00-08:00",
        "reason": {
            "system": "icd10cm",
            "code": "F33.2",
            "display": "Major depressive disorder, recurrent severe",
        },
        "note": "Failed two SSRIs.",
    }
    assert validate_record("referral", record) == []


@pytest.mark.parametrize(
    ("changes", "path", "rule"),
    [
        (
            {"reasonCode": [{"coding": [{"system": "http://example.org/local", "code": "X"}]}]},
            "reasonCode",
            "unknown-code",
        ),
        ({"reasonCode": []}, "reasonCode", "unknown-code"),
        ({"status": "revoked"}, "status", "status"),
        ({"authoredOn": "2026-03-01"}, "authoredOn", "required"),
    ],
)
def test_referral_rejections_name_field_and_rule(changes, path, rule):
    with pytest.raises(InboundError) as caught:
        inbound.referral_record(_sr(**changes), destination="north", patient_id="M", practitioner_id="P")
    assert caught.value.path == f"ServiceRequest.{path}" and caught.value.rule == rule


def test_addressed_to_clinic_by_reference_or_identifier():
    assert inbound.addressed_to_clinic(_sr(), EHR, ["Organization/clinic-7"], [])
    assert not inbound.addressed_to_clinic(_sr(), EHR, ["Organization/other"], [])
    by_id = _sr(performer=[{"identifier": {"system": NPI, "value": "1234567893"}}])
    assert inbound.addressed_to_clinic(by_id, EHR, [], [(NPI, "1234567893")])
    elsewhere = _sr(performer=[{"reference": "https://evil.example.org/fhir/Organization/clinic-7"}])
    assert not inbound.addressed_to_clinic(elsewhere, EHR, ["Organization/clinic-7"], [])


def test_relative_reference():
    assert inbound.relative_reference({"reference": "Patient/p-9"}, EHR) == ("Patient", "p-9")
    assert inbound.relative_reference({"reference": f"{EHR}/Patient/p-9/_history/2"}, EHR) == (
        "Patient",
        "p-9",
    )
    assert inbound.relative_reference({"reference": "https://x.example.org/Patient/p"}, EHR) is None
    assert inbound.relative_reference({"display": "somebody"}, EHR) is None


def test_requester_becomes_referrer_by_npi_or_is_our_own(ctx):
    dr = {
        "resourceType": "Practitioner",
        "id": "dr-1",
        "identifier": [{"system": NPI, "value": "1234567893"}],
        "name": [{"use": "official", "family": "Ruiz", "given": ["Ana"]}],
        "telecom": [{"system": "phone", "value": "+1 503 555 0199"}],
    }
    record = inbound.practitioner_record(dr, ctx)
    assert record == {
        "id": "npi-1234567893",
        "given": ["Ana"],
        "family": "Ruiz",
        "role": "referrer",
        "npi": "1234567893",
        "phone": "+1 503 555 0199",
    }
    assert validate_record("practitioner", record) == []
    ours = {**dr, "identifier": [{"system": f"{BASE}/sid/practitioner", "value": "P-REF-1"}]}
    assert inbound.practitioner_id(ours, ctx) == "P-REF-1"
    with pytest.raises(InboundError, match="no NPI"):
        inbound.practitioner_id({**dr, "identifier": []}, ctx)


def test_demographics_merge_keeps_clinic_owned_fields():
    current = {
        "id": "MRN-1",
        "given": ["Old"],
        "family": "Name",
        "birth_date": "1980-01-01",
        "sex": "female",
        "phone": "+1 503 555 0000",
        "consent": {"share_with_referrer": False},
        "allergies": [{"id": "a1", "substance": {"text": "latex"}, "status": "active"}],
        "identifiers": [{"system": "urn:oid:1.2.3", "value": "H-1"}],
    }
    patient = {
        "resourceType": "Patient",
        "id": "p-9",
        "name": [
            {"use": "old", "family": "Name", "given": ["Old"]},
            {"use": "official", "family": "New", "given": ["Ana", "M"]},
        ],
        "gender": "female",
        "birthDate": "1980-01-01",
        "telecom": [{"system": "email", "value": "ana@example.org"}],
        "address": [
            {
                "use": "home",
                "line": ["1 Main St"],
                "city": "Portland",
                "state": "OR",
                "postalCode": "97210",
                "country": "US",
            }
        ],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}},
            {"preferred": True, "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]}},
        ],
    }
    merged = inbound.merge_demographics(current, patient)
    assert merged["given"] == ["Ana", "M"] and merged["family"] == "New"
    assert merged["email"] == "ana@example.org" and merged["phone"] == "+1 503 555 0000"  # absent: kept
    assert merged["address"]["postal_code"] == "97210" and merged["language"] == "es-MX"
    for owned in ("consent", "allergies", "identifiers"):
        assert merged[owned] == current[owned]
    assert validate_record("patient", merged) == []


def test_unknown_gender_is_rejected():
    with pytest.raises(InboundError) as caught:
        inbound.demographics({"gender": "intersex"})
    assert caught.value.path == "Patient.gender" and caught.value.rule == "unknown-code"


def test_clinic_id_by_our_identifier_system(ctx):
    patient = {
        "identifier": [
            {"system": "urn:oid:9", "value": "X"},
            {"system": f"{BASE}/sid/patient", "value": "MRN-1"},
        ]
    }
    assert inbound.clinic_id(patient, ctx, "patient") == "MRN-1"
    assert inbound.clinic_id({"identifier": []}, ctx, "patient") is None


def test_relative_reference_refuses_ids_outside_the_fhir_grammar():
    bad = ("Practitioner/..", "Patient/.", "Patient/x#f", "Patient/a/b", "patient/1", "Patient/" + "a" * 65)
    for ref in bad:
        assert inbound.relative_reference({"reference": ref}, EHR) is None, ref


def test_clinic_ids_lists_each_distinct_mrn_and_resource_id_of_follows_the_fhir_grammar(ctx):
    ours = ctx.sid("patient")
    patient = {
        "id": "ehr-1",
        "identifier": [
            {"system": ours, "value": "MRN1"},
            {"system": "urn:oid:1.2.3", "value": "H-1"},
            {"system": ours, "value": "MRN1"},
            {"system": ours, "value": "MRN2"},
        ],
    }
    assert inbound.clinic_ids(patient, ctx, "patient") == ["MRN1", "MRN2"]
    assert inbound.clinic_id(patient, ctx, "patient") == "MRN1"
    assert inbound.clinic_ids({"identifier": 5}, ctx, "patient") == []
    assert inbound.resource_id_of(patient) == "ehr-1"
    for bad in (None, 7, "..", "a/b", "x" * 65):
        assert inbound.resource_id_of({"id": bad}) is None
