"""Audit-log rows as R4 AuditEvents: schema-valid, coded from the terminology files, no row dropped."""

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from mappings.audit_event import outcome_code, to_audit_event
from mappings.context import ClinicOrganization, MappingContext
from tests.mappings.conformance import BASE, SCHEMA_PATH, code_problems, schema_errors

CTX = MappingContext(
    base_url=BASE, organization=ClinicOrganization(clinic_id="clinic", name="Clinic"), system_name="charting"
)
ACTIONS = [
    "fhir.read", "fhir.vread", "fhir.history", "fhir.history-type", "fhir.search", "fhir.everything",
    "fhir.export.kickoff", "intake.put", "intake.batch", "intake.read", "smart.token", "smart.refused",
    "auth.refused", "audit.read", "sync.trigger",
]  # fmt: skip


def _row(action: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "pk": 7,
        "recorded_at": datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        "request_id": "r1",
        "actor": "ehr-client",
        "role": "smart",
        "action": action,
        "outcome": 200,
        "patient_id": "pat-1",
        "entity": "Observation/obs-1",
        "remote_addr": "10.0.0.5",
        "detail": '{"reason": "invalid_scope"}',
    }
    return row | overrides


@pytest.mark.skipif(
    not SCHEMA_PATH.exists(), reason="../shared/reference/fhir-r4-schema is not beside the clone"
)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_is_a_valid_coded_audit_event(action):
    event = to_audit_event(_row(action), CTX)
    assert schema_errors(event) == []
    assert code_problems(event) == []
    AuditEvent.model_validate(event)


def test_rest_reads_name_the_interaction_the_patient_and_the_resource():
    event = to_audit_event(_row("fhir.read"), CTX)
    assert event["type"]["code"] == "rest" and event["subtype"][0]["code"] == "read"
    assert event["action"] == "R" and event["outcome"] == "0"
    assert [e["what"]["reference"] for e in event["entity"]] == ["Patient/pat-1", "Observation/obs-1"]
    assert event["agent"][0]["who"]["identifier"]["value"] == "ehr-client"
    assert event["id"] == "audit-7" and event["recorded"] == "2026-11-25T09:30:00+00:00"


def test_refusals_are_authentication_failures_with_their_reason():
    event = to_audit_event(_row("smart.refused", outcome=401, actor=None, patient_id=None, entity=None), CTX)
    assert event["type"]["code"] == "110114" and event["outcome"] == "4"
    assert event["entity"] == [
        {"name": "smart.refused", "detail": [{"type": "reason", "valueString": "invalid_scope"}]}
    ]
    assert event["agent"][0]["who"]["identifier"]["value"] == "anonymous"


def test_unknown_actions_are_kept_as_application_activity():
    event = to_audit_event(_row("sync.trigger", entity="destinations/epic"), CTX)
    assert event["type"]["code"] == "110100" and event["action"] == "E" and "subtype" not in event
    assert event["entity"][1] == {
        "name": "destinations/epic",
        "detail": [{"type": "reason", "valueString": "invalid_scope"}],
    }


@pytest.mark.parametrize(("status", "code"), [(200, "0"), (304, "0"), (403, "4"), (404, "4"), (503, "8")])
def test_http_status_folds_into_the_four_r4_outcomes(status, code):
    assert outcome_code(status) == code
