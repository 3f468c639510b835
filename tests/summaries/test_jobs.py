"""The trigger scan and the weekly digest on both databases, through the real intake API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from integration.jobs import jobs_for
from integration.summaries import jobs as jobs_module
from integration.summaries import prepare as prepare_module
from integration.summaries.jobs import purge_history, scan_changes, summary_job_specs, weekly_digest
from integration.summaries.ledger import SummaryLedger
from mappings.ids import resource_id
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import referrer, series_batch


@pytest.fixture
def body(client, clinic_headers) -> dict:
    b = series_batch()
    post_batch(client, clinic_headers, b)
    return b


def _entries(db, name=None):
    with db.reader() as conn:
        return SummaryLedger(conn).entries(referrer=name)


def test_scan_prepares_once_then_supersedes_after_a_correction(app, db, client, clinic_headers, body):
    app.extensions["horizon.referrers"] = {"dr-ref": referrer()}
    first = scan_changes(app)
    assert first["due"] == 1 and first["prepared"] == 1 and first["feed_rows"] > 0
    (entry,) = _entries(db)
    assert entry.reasons == ("safety-signal", "series-completed", "session-completed")
    assert scan_changes(app) == {"feed_rows": 0, "due": 0, "cursor": first["cursor"], "prepared": 0}
    session = {**body["sessions"][2], "note": "Amended after review"}
    response = client.put(
        f"/api/v1/sessions/{session['id']}",
        data=orjson.dumps(session),
        headers=clinic_headers,
        content_type="application/json",
    )
    assert response.status_code == 200
    again = scan_changes(app)
    assert again["due"] == 1 and again["prepared"] == 1
    v1, v2 = _entries(db)
    assert (v2.reasons, v2.version, v2.replaces_pk, v2.set_id) == (("correction",), 2, v1.pk, v1.set_id)


def test_consent_withdrawn_means_nothing_is_due(app, db, client, clinic_headers, body):
    patient = {**body["patients"][0], "consent": {"share_with_referrer": False}}
    response = client.put(
        f"/api/v1/patients/{patient['id']}",
        data=orjson.dumps(patient),
        headers=clinic_headers,
        content_type="application/json",
    )
    assert response.status_code == 200
    app.extensions["horizon.referrers"] = {"dr-ref": referrer()}
    assert scan_changes(app)["due"] == 0
    assert _entries(db) == []


def test_the_wrong_referrer_gets_nothing(app, db, body):
    app.extensions["horizon.referrers"] = {"other": referrer(name="other", practitioner="prac-0006")}
    assert scan_changes(app)["due"] == 0


def test_a_crash_during_preparation_leaves_it_due(app, db, body, monkeypatch):
    app.extensions["horizon.referrers"] = {"dr-ref": referrer()}

    def crash(*_args, **_kw):
        raise RuntimeError("worker died while rendering")

    monkeypatch.setattr(prepare_module, "render", crash)
    with pytest.raises(RuntimeError):
        scan_changes(app)
    (due,) = _entries(db)
    assert due.state == "due"
    monkeypatch.undo()
    assert scan_changes(app)["prepared"] == 1
    assert [e.state for e in _entries(db)] == ["prepared"]


def test_weekly_digest_sends_only_what_is_new(app, db, body):
    digest = referrer(name="digest", triggers=["weekly-digest"], digest_schedule="0 7 * * mon")
    app.extensions["horizon.referrers"] = {"digest": digest}
    assert scan_changes(app)["due"] == 0  # not change-driven
    assert weekly_digest(app, "digest") == {"referrer": "digest", "due": 1, "prepared": 1}
    assert weekly_digest(app, "digest") == {"referrer": "digest", "due": 1, "prepared": 0}
    prepared, skipped = _entries(db, "digest")
    assert prepared.patient_id == patient_fhir_id(body["patients"][0]["id"])
    assert (skipped.state, skipped.detail) == ("skipped", "nothing new to send")
    assert weekly_digest(app, "gone")["error"] == "not configured"


def test_job_specs(app):
    digest = referrer(name="digest", triggers=["weekly-digest"], digest_schedule="0 7 * * mon")
    assert [(s.id, s.trigger_args) for s in summary_job_specs({})] == [("summary-ledger-purge", {"hours": 1})]
    specs = summary_job_specs({"digest": digest, "dr-ref": referrer()})
    assert [(s.id, s.trigger) for s in specs] == [
        ("summary-triggers", "interval"),
        ("summary-ledger-purge", "interval"),
        ("summary-delivery", "interval"),
        ("summary-digest-digest", "cron"),
    ]
    assert specs[2].trigger_args == {"seconds": 30, "coalesce": True, "max_instances": 1}
    assert specs[3].trigger_args == {
        "minute": "0",
        "hour": "7",
        "day": "*",
        "month": "*",
        "day_of_week": "mon",
    }
    app.extensions["horizon.referrers"] = {"digest": digest}
    assert {"summary-triggers", "summary-ledger-purge", "summary-delivery", "summary-digest-digest"} <= {
        s.id for s in jobs_for(app)
    }


def _put(client, headers, kind: str, record: dict) -> None:
    response = client.put(
        f"/api/v1/{kind}/{record['id']}",
        data=orjson.dumps(record),
        headers=headers,
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.json


def _document_refs(entry) -> set[str]:
    """Every `Type/id` the prepared document Bundle carries."""
    bundle = orjson.loads(orjson.loads(entry.payload)["requests"][0]["body"])
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}


def test_a_session_moved_to_another_patient_supersedes_the_first_referrers_document(
    app, db, client, clinic_headers, body
):
    """Wrong-patient correction: the change feed files the moved session under its new patient only; the
    first patient's referrer must still get a version that replaces the one holding the session."""
    other = {**body["patients"][0], "id": "MRN200001", "given": ["Ruth"], "family": "Okafor"}
    other.pop("identifiers", None)
    other["referring_practitioner_id"] = "prac-0006"
    post_batch(
        client,
        clinic_headers,
        {
            "patients": [other],
            "referrals": [
                {
                    **body["referrals"][0],
                    "id": "ref-MRN200001",
                    "patient_id": "MRN200001",
                    "practitioner_id": "prac-0006",
                }
            ],
        },
    )
    app.extensions["horizon.referrers"] = {
        "dr-ref": referrer(),
        "dr-other": referrer(name="dr-other", practitioner="prac-0006"),
    }
    scan_changes(app)
    (first,) = _entries(db, "dr-ref")
    moved = body["sessions"][2]
    encounter = f"Encounter/{resource_id('session', moved['id'])}"
    assert encounter in _document_refs(first)

    _put(client, clinic_headers, "sessions", {**moved, "patient_id": "MRN200001"})
    report = scan_changes(app)
    assert report["prepared"] >= 1
    v1, v2 = _entries(db, "dr-ref")
    assert (v2.state, v2.reasons, v2.set_id, v2.version, v2.replaces_pk) == (
        "prepared",
        ("correction",),
        v1.set_id,
        2,
        v1.pk,
    )
    assert encounter not in _document_refs(v2)
    bundle = orjson.loads(orjson.loads(v2.payload)["requests"][0]["body"])
    assert bundle["entry"][0]["resource"]["relatesTo"][0]["code"] == "replaces"
    # The session's new patient is summarized for their own referrer.
    assert any(encounter in _document_refs(e) for e in _entries(db, "dr-other") if e.payload)


def test_the_purge_job_keeps_recent_skips_and_every_document(app, db, body, monkeypatch):
    """Each digest with nothing new leaves a skipped row; past the retention the purge job deletes them (in
    bounded batches) and keeps the prepared document."""
    digest = referrer(name="digest", triggers=["weekly-digest"], digest_schedule="0 7 * * mon")
    app.extensions["horizon.referrers"] = {"digest": digest}
    start = datetime.now(UTC)
    for week in range(4):
        weekly_digest(app, "digest", now=start + timedelta(weeks=week))
    prepared, *skipped = _entries(db, "digest")
    assert prepared.state == "prepared" and [e.state for e in skipped] == ["skipped"] * 3
    monkeypatch.setattr(jobs_module, "PURGE_BATCH", 1)
    retention = timedelta(days=app.config["HORIZON_SETTINGS"].summary_skipped_retention_days)
    # At the retention of the second skip: the first one (a week older) goes, the later ones stay.
    assert purge_history(app, now=start + timedelta(weeks=2) + retention)["removed"] == 1
    assert [e.pk for e in _entries(db, "digest")] == [prepared.pk, skipped[1].pk, skipped[2].pk]
    assert purge_history(app, now=start + timedelta(weeks=4) + retention)["removed"] == 2
    assert [e.pk for e in _entries(db, "digest")] == [prepared.pk]
