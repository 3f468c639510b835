"""Pull from a real FHIR server on 127.0.0.1 into the real database (both backends): referrals and
demographics through intake, watermark with overlap, version dedupe, quarantine, paging, fallback
without `_lastUpdated`, and a crash between storing a page and moving the watermark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import select

from integration.store.records import ClinicRecordRepository
from integration.store.schema import audit_event, clinic_record, fhir_resource
from integration.sync import pull_service
from integration.sync.pull_state import PullStateRepository
from mappings.ids import resource_id
from tests.sync.conftest import load, make_destination

NPI = "http://hl7.org/fhir/sid/us-npi"
CLINIC = "Organization/clinic-7"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def destination(receiver, **pull):
    fields = {
        "referrals": True,
        "demographics": True,
        "clinic_references": [CLINIC],
        "overlap_seconds": 60,
        "page_size": 2,
    }
    fields.update(pull)
    return make_destination(receiver.url, pull=fields)


def ehr_patient(ctx, ehr_id, mrn, family="Ironvale", **extra):
    ident = [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"H-{ehr_id}"}]
    if mrn:
        ident.append({"system": ctx.sid("patient"), "value": mrn})
    return {
        "resourceType": "Patient",
        "id": ehr_id,
        "identifier": ident,
        "name": [{"use": "official", "family": family, "given": ["Julia"]}],
        "gender": "female",
        **extra,
    }


def service_request(sr_id, patient="ehr-p1", code=("http://hl7.org/fhir/sid/icd-10-cm", "F33.2"), **extra):
    return {
        "resourceType": "ServiceRequest",
        "id": sr_id,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Practitioner/dr-1"},
        "performer": [{"reference": CLINIC}],
        "authoredOn": "2026-03-01T09:15:00-08:00",
        "reasonCode": [{"coding": [{"system": code[0], "code": code[1]}]}],
        **extra,
    }


@pytest.fixture
def world(db, ctx, receiver):
    """Two clinic patients linked on the EHR, one patient the clinic lacks, a referrer."""
    batch = load(db, ctx)
    mrns = [p["id"] for p in batch["patients"]]
    ehr = receiver.ehr
    ehr.put(ehr_patient(ctx, "ehr-p1", mrns[0], family="Ironvale"), T0)
    second = batch["patients"][1]
    same = ehr_patient(
        ctx, "ehr-p2", mrns[1], family=second["family"], gender=second["sex"], birthDate=second["birth_date"]
    )
    same["name"][0]["given"] = second["given"]
    ehr.put(same, T0)  # says exactly what the clinic has
    ehr.put(ehr_patient(ctx, "ehr-p3", "MRN-UNKNOWN"), T0)
    ehr.put(
        {
            "resourceType": "Practitioner",
            "id": "dr-1",
            "identifier": [{"system": NPI, "value": "1234567893"}],
            "name": [{"family": "Ruiz", "given": ["Ana"]}],
        },
        T0,
    )
    return {"batch": batch, "mrns": mrns}


def pull(app, dest, fault=None, full=False):
    db, settings, ctx = (
        app.extensions["horizon.db"],
        app.config["HORIZON_SETTINGS"],
        app.extensions["horizon.mapping"],
    )
    run, created = pull_service.start(db, settings, dest, {"full": full}, "test")
    assert created
    result = pull_service.execute(db, settings, ctx, dest, run["run_id"], {"full": full}, "test", fault=fault)
    return result


def referral(db, sr_id):
    with db.reader() as conn:
        stored = ClinicRecordRepository(conn).get("referral", f"ehr-test-ehr-{sr_id}")
    return stored


def versions(db, kind, clinic_id):
    with db.reader() as conn:
        return ClinicRecordRepository(conn).versions(kind, clinic_id)


def test_first_pull_stores_through_intake_and_a_second_stores_nothing(app, db, ctx, receiver, world):
    ehr = receiver.ehr
    ehr.put(service_request("sr-1"), T0 + timedelta(seconds=1))
    ehr.put(service_request("sr-2", patient="ehr-p2"), T0 + timedelta(seconds=2))
    ehr.put(service_request("sr-bad", code=("http://example.org/local", "X1")), T0 + timedelta(seconds=3))
    ehr.put(service_request("sr-unknown", patient="ehr-p3"), T0 + timedelta(seconds=4))
    ehr.put(
        service_request("sr-other", performer=[{"reference": "Organization/elsewhere"}]),
        T0 + timedelta(seconds=5),
    )
    dest = destination(receiver, demographics=False)

    first = pull(app, dest)
    assert first["state"] == "done", first
    assert first["counts"]["stored"] == 2 and first["counts"]["rejected"] == 1
    assert first["counts"]["unknown_patient"] == 1 and first["counts"]["skipped"] == 1
    assert first["counts"]["modes"] == {"ServiceRequest": "lastUpdated"}
    stored = referral(db, "sr-1")
    assert stored.source == "ehr" and stored.version == 1
    record = orjson.loads(stored.payload)
    assert record["patient_id"] == world["mrns"][0] and record["practitioner_id"] == "npi-1234567893"
    assert record["reason"] == {"system": "icd10cm", "code": "F33.2"}
    assert versions(db, "practitioner", "npi-1234567893") == [1]  # the referrer, created once
    with db.reader() as conn:
        sr = conn.execute(
            select(fhir_resource.c.content).where(
                fhir_resource.c.resource_type == "ServiceRequest",
                fhir_resource.c.id == resource_id("referral", "ehr-test-ehr-sr-1"),
            )
        ).scalar_one()
        actions = [r.action for r in conn.execute(select(audit_event.c.action))]
    assert orjson.loads(sr)["subject"]["reference"] == f"Patient/{resource_id('patient', world['mrns'][0])}"
    assert "sync.pull" in actions and "sync.pull.reject" in actions
    problems = {e["resource"]: e for e in first["errors"]}
    assert problems["ServiceRequest/sr-bad"]["rule"] == "unknown-code"
    assert "ServiceRequest.reasonCode" in problems["ServiceRequest/sr-bad"]["path"]
    assert problems["ServiceRequest/sr-unknown"]["rule"] == "unknown_patient"
    assert referral(db, "sr-bad") is None and referral(db, "sr-other") is None

    second = pull(app, dest)
    assert second["state"] == "done" and second["counts"].get("stored", 0) == 0
    assert second["counts"].get("rejected", 0) == 0  # a rejected version is not judged again
    assert "_lastUpdated=ge" in receiver.ehr.searches[-1]


def test_updated_referral_makes_a_new_version_and_the_overlap_applies_nothing_twice(app, db, receiver, world):
    ehr = receiver.ehr
    ehr.put(service_request("sr-1"), T0 + timedelta(seconds=1))
    dest = destination(receiver, demographics=False)
    assert pull(app, dest)["counts"]["stored"] == 1
    # Inside the overlap window (60 s) the same version comes back: applied once only.
    again = pull(app, dest)
    assert again["counts"].get("already_applied") == 1 and again["counts"].get("stored", 0) == 0
    ehr.put(service_request("sr-1", note=[{"text": "Urgent, please."}]), T0 + timedelta(seconds=30))
    third = pull(app, dest)
    assert third["counts"]["stored"] == 1
    assert versions(db, "referral", "ehr-test-ehr-sr-1") == [1, 2]
    assert orjson.loads(referral(db, "sr-1").payload)["note"] == "Urgent, please."


def test_demographics_merge_and_overlap_never_undoes_a_later_clinic_change(app, db, ctx, receiver, world):
    mrn = world["mrns"][0]
    receiver.ehr.put(
        ehr_patient(
            ctx, "ehr-p1", mrn, family="Castellan", telecom=[{"system": "email", "value": "j@example.org"}]
        ),
        T0 + timedelta(seconds=5),
    )
    dest = destination(receiver, referrals=False)
    result = pull(app, dest)
    assert result["state"] == "done" and result["counts"]["stored"] == 1, result
    assert result["counts"]["unknown_patient"] == 1  # ehr-p3: never created
    assert result["counts"]["unchanged"] == 1  # ehr-p2 says what the clinic already has
    with db.reader() as conn:
        current = orjson.loads(ClinicRecordRepository(conn).get("patient", mrn).payload)
        assert ClinicRecordRepository(conn).get("patient", "MRN-UNKNOWN") is None
    original = world["batch"]["patients"][0]
    assert current["family"] == "Castellan" and current["email"] == "j@example.org"
    for owned in ("consent", "identifiers", "referring_practitioner_id", "phone", "address"):
        assert current[owned] == original[owned]
    # The clinic changes the name back; the EHR version (still in the overlap) must not be re-applied.
    from integration.ingest.service import ingest

    ingest(db, [("patient", {**current, "family": "Ironvale-Castellan"})], ctx=ctx, source="api")
    again = pull(app, dest)
    assert again["counts"]["already_applied"] >= 1 and again["counts"].get("stored", 0) == 0
    with db.reader() as conn:
        assert (
            orjson.loads(ClinicRecordRepository(conn).get("patient", mrn).payload)["family"]
            == "Ironvale-Castellan"
        )
    assert "identifier=" in receiver.ehr.searches[-1]  # only linked patients are asked for


def test_paging_follows_next_links(app, db, receiver, world):
    for n in range(5):
        receiver.ehr.put(service_request(f"sr-{n}"), T0 + timedelta(seconds=n))
    result = pull(app, destination(receiver, demographics=False, page_size=2))
    assert result["counts"]["stored"] == 5 and result["counts"]["fetched"] == 5
    assert sum("_offset=" in q for q in receiver.ehr.searches) == 2


def test_next_link_off_the_destination_is_not_followed(app, db, receiver, world):
    for n in range(3):
        receiver.ehr.put(service_request(f"sr-{n}"), T0 + timedelta(seconds=n))
    receiver.ehr.next_base = "http://127.0.0.2:9/fhir"
    result = pull(app, destination(receiver, demographics=False, page_size=2))
    assert result["state"] == "failed" and result["counts"]["stored"] == 2
    assert "next link" in result["errors"][-1]["error"]
    with db.reader() as conn:  # the first page was sorted and stored: its watermark holds
        assert PullStateRepository(conn).watermark("test-ehr", "ServiceRequest") == T0 + timedelta(seconds=1)


def test_fallback_without_lastupdated_filters_here(app, db, receiver, world):
    receiver.ehr.last_updated = False
    receiver.ehr.put(service_request("sr-1"), T0)
    receiver.ehr.put(service_request("sr-2"), T0 + timedelta(hours=1))
    dest = destination(receiver, demographics=False)
    first = pull(app, dest)
    assert first["counts"]["modes"] == {"ServiceRequest": "search"} and first["counts"]["stored"] == 2
    receiver.ehr.put(service_request("sr-3"), T0 + timedelta(hours=2))
    second = pull(app, dest)
    assert all("_lastUpdated" not in q for q in receiver.ehr.searches)
    assert second["counts"]["stored"] == 1 and second["counts"]["outside_window"] == 1  # sr-1: too old
    assert second["counts"]["already_applied"] == 1  # sr-2: inside the overlap, same version
    with db.reader() as conn:
        assert PullStateRepository(conn).watermark("test-ehr", "ServiceRequest") == T0 + timedelta(hours=2)


def test_unsorted_server_moves_the_watermark_only_at_the_end(app, db, receiver, world):
    receiver.ehr.sort = False
    for n in range(3):
        receiver.ehr.put(service_request(f"sr-{n}"), T0 + timedelta(seconds=n))
    marks = []

    def fault(_type):
        with db.reader() as conn:
            marks.append(PullStateRepository(conn).watermark("test-ehr", "ServiceRequest"))

    result = pull(app, destination(receiver, demographics=False, page_size=2), fault=fault)
    assert result["counts"]["stored"] == 3 and marks == [None, None]
    with db.reader() as conn:
        assert PullStateRepository(conn).watermark("test-ehr", "ServiceRequest") == T0 + timedelta(seconds=2)


def test_crash_between_page_store_and_watermark_skips_nothing(app, db, receiver, world):
    for n in range(3):
        receiver.ehr.put(service_request(f"sr-{n}"), T0 + timedelta(seconds=n))
    dest = destination(receiver, demographics=False, page_size=2)

    class WorkerKilled(BaseException):  # a kill is not an error the pull could catch
        pass

    def crash(_type):
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        pull(app, dest, fault=crash)
    with db.reader() as conn:
        assert PullStateRepository(conn).watermark("test-ehr", "ServiceRequest") is None
        stored_before = conn.execute(
            select(clinic_record.c.clinic_id).where(clinic_record.c.source == "ehr")
        ).all()
    assert {r.clinic_id for r in stored_before} >= {"ehr-test-ehr-sr-0", "ehr-test-ehr-sr-1"}
    result = pull(app, dest)
    assert result["state"] == "done"
    assert result["counts"]["stored"] == 1 and result["counts"]["unchanged"] == 2  # re-read, not re-applied
    for n in range(3):
        assert versions(db, "referral", f"ehr-test-ehr-sr-{n}") == [1]


def test_full_pull_looks_again_at_everything(app, db, receiver, world):
    receiver.ehr.put(service_request("sr-1"), T0)
    dest = destination(receiver, demographics=False)
    pull(app, dest)
    result = pull(app, dest, full=True)
    assert result["counts"]["unchanged"] == 1 and result["counts"].get("already_applied", 0) == 0


def test_malformed_ehr_resources_are_rejected_one_by_one_and_the_pull_goes_on(app, db, ctx, receiver, world):
    """Untrusted shapes (a number where FHIR has a list, a reference to `..`) reject that record only."""
    ehr = receiver.ehr
    broken = ehr_patient(ctx, "ehr-p1", world["mrns"][0], family="Ironvale")
    broken["telecom"] = 5
    ehr.put(broken, T0 + timedelta(seconds=1))
    dots = service_request("sr-dots")
    dots["requester"] = {"reference": "Practitioner/.."}
    ehr.put(dots, T0 + timedelta(seconds=2))
    ehr.put(service_request("sr-1"), T0 + timedelta(seconds=3))
    dest = destination(receiver)

    result = pull(app, dest)
    assert result["state"] == "done", result
    assert result["counts"].get("failed_types", 0) == 0
    problems = {e["resource"]: e for e in result["errors"]}
    assert problems["Patient/ehr-p1"]["rule"] == "malformed"
    assert "ServiceRequest/sr-dots" in problems and referral(db, "sr-dots") is None
    assert referral(db, "sr-1") is not None
    assert pull(app, dest)["state"] == "done"  # and the next run is not stuck on them either
