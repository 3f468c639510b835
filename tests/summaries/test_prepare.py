"""Preparation on both databases: once per content, superseding versions after a correction."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from integration.summaries.ledger import SummaryLedger
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import preparer, referrer, series_batch

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def ingested(client, clinic_headers) -> dict:
    body = series_batch()
    post_batch(client, clinic_headers, body)
    return body


def _due(db, patient: str, name: str, reasons: list[str]) -> int:
    with db.writer() as conn:
        return SummaryLedger(conn).add_due(patient, name, reasons, NOW)


def _entries(db, patient: str) -> list:
    with db.reader() as conn:
        return SummaryLedger(conn).entries(patient_id=patient)


def test_prepared_once_per_content(app, db, ingested):
    patient = patient_fhir_id(ingested["patients"][0]["id"])
    prep = preparer(app, referrer())
    _due(db, patient, "dr-ref", ["session-completed"])
    first = prep.prepare_due(now=NOW)
    assert len(first) == 1
    (entry,) = _entries(db, patient)
    assert (entry.state, entry.version, entry.reasons) == ("prepared", 1, ("session-completed",))
    assert entry.period_start is None and entry.period_end.isoformat() == "2026-02-27"  # the follow-up scores
    # Nothing new: a second trigger prepares nothing and says so.
    _due(db, patient, "dr-ref", ["session-completed", "correction"])
    assert prep.prepare_due(now=NOW) == []
    entries = _entries(db, patient)
    assert [e.state for e in entries] == ["prepared", "skipped"]
    assert entries[1].detail == "nothing new to send"
    payload = orjson.loads(entries[0].payload)
    assert [r["path"] for r in payload["requests"]] == ["Bundle", "DocumentReference"]


def test_a_correction_supersedes(app, db, client, clinic_headers, ingested):
    patient = patient_fhir_id(ingested["patients"][0]["id"])
    prep = preparer(app, referrer())
    _due(db, patient, "dr-ref", ["session-completed"])
    prep.prepare_due(now=NOW)
    session = dict(ingested["sessions"][-1])
    session["note"] = "Corrected: patient reported mild nausea after discharge."
    response = client.put(
        f"/api/v1/sessions/{session['id']}",
        data=orjson.dumps(session),
        headers=clinic_headers,
        content_type="application/json",
    )
    assert response.status_code == 200, response.json
    _due(db, patient, "dr-ref", ["correction"])
    assert len(prep.prepare_due(now=NOW)) == 1
    first, second = _entries(db, patient)
    assert (second.state, second.set_id, second.version, second.replaces_pk) == (
        "prepared",
        first.set_id,
        2,
        first.pk,
    )
    assert second.reasons == ("correction",)
    assert second.content_hash != first.content_hash
    bundle = orjson.loads(orjson.loads(second.payload)["requests"][0]["body"])
    relates = bundle["entry"][0]["resource"]["relatesTo"]
    assert relates == [
        {
            "code": "replaces",
            "targetIdentifier": {
                "system": relates[0]["targetIdentifier"]["system"],
                "value": first.document_id,
            },
        }
    ]


def test_transport_states_and_a_dead_version_is_covered_again(app, db, ingested):
    patient = patient_fhir_id(ingested["patients"][0]["id"])
    prep = preparer(app, referrer())
    _due(db, patient, "dr-ref", ["session-completed"])
    (pk,) = prep.prepare_due(now=NOW)
    with db.writer() as conn:
        ledger = SummaryLedger(conn)
        assert [e.pk for e in ledger.prepared()] == [pk]
        assert ledger.mark_dead(pk, "422 from the referrer: invalid document", NOW)
        assert not ledger.mark_sent(pk, NOW)  # dead stays dead
        assert ledger.prepared() == []
    # The referrer never had version 1: the next trigger covers the same days again, as version 2,
    # replacing nothing.
    _due(db, patient, "dr-ref", ["session-completed"])
    (again,) = prep.prepare_due(now=NOW)
    with db.writer() as conn:
        ledger = SummaryLedger(conn)
        dead, second = ledger.entries(patient_id=patient)
        assert (dead.state, dead.detail) == ("dead", "422 from the referrer: invalid document")
        assert (second.pk, second.set_id, second.version, second.replaces_pk) == (again, dead.set_id, 2, None)
        assert second.content_hash == dead.content_hash
        assert ledger.mark_sent(again, NOW) and not ledger.mark_sent(again, NOW)
        assert ledger.get(again).state == "sent"
    bundle = orjson.loads(orjson.loads(second.payload)["requests"][0]["body"])
    assert "relatesTo" not in bundle["entry"][0]["resource"]
