"""Triggers on hand-built resources: each trigger, consent, the patient's own referrer only."""

from __future__ import annotations

from integration.summaries.triggers import PatientState, digest_due, due_summaries, fired, ineligible
from mappings.ids import resource_id
from mappings.records import Consent
from tests.summaries.delivery_helpers import referrer

PATIENT = resource_id("patient", "MRN1")
PRACTITIONER = resource_id("practitioner", "prac-0003")
NPI = "1234567893"
PLAN = "CarePlan/plan-1"


def _resources(*, flag_status: str = "active", second_status: str = "completed") -> tuple[dict, ...]:
    def procedure(n: int, status: str) -> dict:
        return {
            "resourceType": "Procedure",
            "id": f"proc-{n}",
            "status": status,
            "encounter": {"reference": f"Encounter/enc-{n}"},
            "basedOn": [{"reference": PLAN}],
        }

    return (
        {"resourceType": "Patient", "id": PATIENT},
        {
            "resourceType": "Practitioner",
            "id": PRACTITIONER,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": NPI}],
        },
        {
            "resourceType": "ServiceRequest",
            "id": "sr-1",
            "category": [{"coding": [{"code": "referral"}]}],
            "requester": {"reference": f"Practitioner/{PRACTITIONER}"},
        },
        {
            "resourceType": "CarePlan",
            "id": "plan-1",
            "activity": [{"detail": {"scheduledTiming": {"repeat": {"count": 2}}}}],
        },
        procedure(1, "completed"),
        procedure(2, second_status),
        {
            "resourceType": "Flag",
            "id": "flag-1",
            "status": flag_status,
            "code": {"coding": [{"code": "phq9-item9-positive"}]},
        },
    )


def _state(consent: Consent | None = None, **kw) -> PatientState:
    return PatientState(PATIENT, _resources(**kw), consent)


def test_each_trigger_fires_on_its_change():
    resources = _resources()
    assert fired(resources, {"Procedure/proc-1"}) == {
        "session-completed": ["Procedure/proc-1"],
        "series-completed": [PLAN],
        "safety-signal": [],
    }
    assert fired(resources, {"Encounter/enc-2"})["session-completed"] == ["Procedure/proc-2"]
    assert fired(resources, {"Flag/flag-1"}) == {
        "session-completed": [],
        "series-completed": [],
        "safety-signal": ["Flag/flag-1"],
    }
    assert fired(resources, {"Observation/x"}) == {
        "session-completed": [],
        "series-completed": [],
        "safety-signal": [],
    }
    everything = fired(resources, None)
    assert everything["session-completed"] == ["Procedure/proc-1", "Procedure/proc-2"]


def test_series_needs_every_planned_session_and_flags_must_be_active():
    unfinished = fired(_resources(second_status="in-progress"), None)
    assert unfinished["series-completed"] == [] and unfinished["session-completed"] == ["Procedure/proc-1"]
    assert fired(_resources(second_status="stopped"), None)["series-completed"] == [PLAN]
    assert fired(_resources(flag_status="inactive"), None)["safety-signal"] == []


def test_due_only_for_what_the_referrer_subscribes_to():
    state = _state()
    (due,) = due_summaries(state, [referrer(triggers=["safety-signal"])], {"Procedure/proc-1", "Flag/flag-1"})
    assert (due.referrer, due.reasons, due.evidence) == ("dr-ref", ("safety-signal",), ("Flag/flag-1",))
    assert due_summaries(state, [referrer(triggers=["series-completed"])], {"Flag/flag-1"}) == []
    (due,) = due_summaries(state, [referrer()], {"Procedure/proc-2"})
    assert due.reasons == ("series-completed", "session-completed")


def test_corrections_only_for_referrers_holding_documents():
    state = _state()
    r = referrer(triggers=["weekly-digest"], digest_schedule="0 7 * * mon")
    assert due_summaries(state, [r], {"Observation/x"}) == []
    (due,) = due_summaries(state, [r], {"Observation/x"}, documented={"dr-ref"})
    assert due.reasons == ("correction",)
    assert due_summaries(state, [r], set(), documented={"dr-ref"}) == []


def test_consent_denied():
    for consent in (
        Consent(share_with_referrer=False),
        Consent(share_with_referrer=True, share_with_destinations=("hospital-ehr",)),
    ):
        state = _state(consent)
        assert due_summaries(state, [referrer()], None) == []
        assert ineligible(state, referrer()) == "consent does not allow sharing with this referrer"
        assert digest_due(state, referrer(triggers=["weekly-digest"], digest_schedule="0 7 * * mon")) is None
    allowed = _state(Consent(share_with_referrer=True, share_with_destinations=("dr-ref",)))
    assert len(due_summaries(allowed, [referrer()], None)) == 1


def test_only_the_patients_own_referrer():
    state = _state()
    assert ineligible(state, referrer(practitioner="prac-0006")) == "not the patient's referrer"
    assert due_summaries(state, [referrer(practitioner="prac-0006")], None) == []
    assert ineligible(state, referrer(practitioner=NPI)) is None  # by NPI
    assert ineligible(state, referrer(enabled=False)) == "referrer disabled"
    no_referral = PatientState(
        PATIENT, tuple(r for r in _resources() if r["resourceType"] != "ServiceRequest"), None
    )
    assert ineligible(no_referral, referrer()) == "not the patient's referrer"


def test_weekly_digest():
    r = referrer(triggers=["weekly-digest"], digest_schedule="0 7 * * mon")
    due = digest_due(_state(), r)
    assert due is not None and due.reasons == ("weekly-digest",)
    assert digest_due(_state(), referrer()) is None
