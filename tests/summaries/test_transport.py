"""Referrer summaries delivered by the sync engine to real servers on 127.0.0.1, on both databases: documents
valid and sent once per change, superseding versions, signed webhooks, consent, dead letters and retry."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import orjson
import pytest

from integration.store.audit import AuditRepository
from integration.store.tokens import TokenRepository
from integration.summaries import transport
from integration.summaries.jobs import scan_changes
from integration.summaries.ledger import SummaryLedger
from integration.summaries.webhook_signing import SignatureError, verify
from tests.mappings.conformance import schema_errors
from tests.summaries.cda_validation import xsd_errors
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import series_batch
from tests.summaries.test_documents import document_rule_errors, pdf_text
from tests.sync.receiver import Receiver, outcome

SECRET_ENV = "TEST_REFERRER_HOOK_SECRET"
CCDA_FORMAT = "urn:hl7-org:sdwg:ccda-structuredBody:2.1"


def referrer_table(name: str, practitioner: str, url: str, channel: str = "fhir", **extra: str) -> str:
    lines = [
        "[[destination]]",
        f'name = "{name}"',
        'kind = "referrer"',
        f'practitioner = "{practitioner}"',
        f'channel = "{channel}"',
        f'url = "{url}"',
        'triggers = ["session-completed", "series-completed", "safety-signal"]',
    ]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    if channel == "fhir":
        lines += ["[destination.auth]", 'type = "none"']
    return "\n".join(lines) + "\n"


def headers_for(app: Any, role: str) -> dict[str, str]:
    with app.extensions["horizon.db"].writer() as conn:
        token = TokenRepository(conn).create(f"{role}-{uuid.uuid4().hex[:8]}", role)
    return {"Authorization": f"Bearer {token}"}


def run_jobs(app: Any, *names: str, linger: float = 0.0) -> list[dict[str, Any]]:
    """The scheduled work, as the scheduler runs it: scan and prepare, then deliver each referrer."""
    scan_changes(app)
    return [transport.deliver(app, name, linger=linger) for name in names]


def ledger(app: Any, patient: str | None = None) -> list[Any]:
    with app.extensions["horizon.db"].reader() as conn:
        return SummaryLedger(conn).entries(patient_id=patient)


def created(receiver: Receiver, resource_type: str) -> list[dict[str, Any]]:
    return [receiver.store[k].versions[-1] for k in receiver.created if k[0] == resource_type]


def put(client: Any, headers: dict[str, str], collection: str, record: dict[str, Any]) -> None:
    response = client.put(
        f"/api/v1/{collection}/{record['id']}",
        data=orjson.dumps(record),
        headers=headers,
        content_type="application/json",
    )
    assert response.status_code == 200, response.json


def check_documents(bundle: dict[str, Any], docref: dict[str, Any]) -> None:
    """The document Bundle and the DocumentReference as a referrer's system would check them."""
    assert document_rule_errors(bundle) == []
    assert schema_errors({**bundle, "entry": bundle["entry"][:1]}) == []
    assert schema_errors(bundle["entry"][0]["resource"]) == []
    assert schema_errors(docref) == []
    assert docref["context"]["related"] == [{"identifier": bundle["identifier"]}]
    ccda, pdf = (base64.b64decode(c["attachment"]["data"]) for c in docref["content"])
    assert docref["content"][0]["format"]["code"] == CCDA_FORMAT
    assert xsd_errors(ccda) == []
    assert pdf.startswith(b"%PDF-") and "Outcome measures" in pdf_text(pdf)
    assert pdf.count(b"/Subtype /Image") >= 2  # trend and dose charts


def test_fhir_channel_each_referrer_gets_its_consenting_patients_once_per_change(make_app, receivers):
    north, south = receivers(), receivers()
    app = make_app(
        referrer_table("dr-north", "prac-0006", north.url)
        + referrer_table("dr-south", "prac-0003", south.url)
    )
    client, clinic = app.test_client(), headers_for(app, "clinic")
    from integration.ingest import synthetic

    body = synthetic.batch(seed=7, n_patients=3, sessions_per_patient=6)  # 1, 2: prac-0006; 3: prac-0003
    body["patients"][1]["consent"] = {"share_with_referrer": False}
    post_batch(client, clinic, body)
    first, second, third = (patient_fhir_id(p["id"]) for p in body["patients"])

    reports = run_jobs(app, "dr-north", "dr-south")
    assert all(r.get("counts", {}).get("dead", 0) == 0 for r in reports), reports
    for receiver, patient in ((north, first), (south, third)):
        bundles, docrefs = created(receiver, "Bundle"), created(receiver, "DocumentReference")
        assert len(bundles) == len(docrefs) >= 1
        assert {b["entry"][0]["resource"]["subject"]["reference"] for b in bundles} == {f"Patient/{patient}"}
        for bundle, docref in zip(bundles, docrefs, strict=True):
            check_documents(bundle, docref)
    assert ledger(app, second) == []  # no consent: nothing prepared, nothing sent
    entries = ledger(app)
    assert entries and {e.state for e in entries} == {"sent"}
    with app.extensions["horizon.db"].reader() as conn:
        audits = AuditRepository(conn).page(limit=50, action="summary.delivery.sent")
    assert sorted(a["entity"] for a in audits) == sorted(f"SummaryDelivery/{e.pk}" for e in entries)

    # Nothing new: nothing sent.
    before = (len(north.requests), len(south.requests))
    run_jobs(app, "dr-north", "dr-south")
    assert (len(north.requests), len(south.requests)) == before

    # A corrected session of the third patient: one superseding document to dr-south, none to dr-north.
    session = next(s for s in reversed(body["sessions"]) if s["patient_id"] == body["patients"][2]["id"])
    put(client, clinic, "sessions", {**session, "note": "Corrected: mild nausea after discharge."})
    run_jobs(app, "dr-north", "dr-south")
    assert len(north.requests) == before[0]
    bundles, docrefs = created(south, "Bundle"), created(south, "DocumentReference")
    replaced = [b for b in bundles if "relatesTo" in b["entry"][0]["resource"]]
    assert len(replaced) == 1 and len(bundles) == len(docrefs)
    latest = max(ledger(app, third), key=lambda e: e.pk)
    assert latest.state == "sent" and latest.replaces_pk is not None
    old = next(e for e in ledger(app, third) if e.pk == latest.replaces_pk)
    relates = replaced[0]["entry"][0]["resource"]["relatesTo"][0]
    assert (relates["code"], relates["targetIdentifier"]["value"]) == ("replaces", old.document_id)
    assert docrefs[-1]["relatesTo"][0]["code"] == "replaces"
    check_documents(replaced[0], docrefs[-1])


@pytest.fixture
def hook_app(make_app, receivers, monkeypatch) -> tuple[Any, Receiver, dict[str, Any]]:
    receiver = receivers()
    receiver.webhook_secret = "s3cret-for-tests"
    monkeypatch.setenv(SECRET_ENV, receiver.webhook_secret)
    app = make_app(
        referrer_table("dr-hook", "prac-0003", receiver.hook_url, "webhook", secret_env=f'"{SECRET_ENV}"')
    )
    body = series_batch()
    post_batch(app.test_client(), headers_for(app, "clinic"), body)
    return app, receiver, body


def test_webhook_signed_at_send_time_and_a_retry_is_signed_afresh(hook_app):
    app, receiver, _body = hook_app
    receiver.fail_next(1, 503, {"Retry-After": "1"})
    (report,) = run_jobs(app, "dr-hook", linger=5.0)
    assert report["counts"]["sent"] >= 1 and report["counts"]["dead"] == 0
    statuses = [status for _h, _b, status in receiver.hook_attempts]
    assert statuses[0] == 503 and set(statuses[1:]) == {200}
    (failed, _, _), (retried, body, _) = receiver.hook_attempts[:2]
    assert failed["X-Horizon-Timestamp"] != retried["X-Horizon-Timestamp"]  # signed again, a second later
    assert failed["X-Horizon-Delivery"] == retried["X-Horizon-Delivery"]
    assert verify(receiver.webhook_secret, retried, body, time.time()) > 0
    with pytest.raises(SignatureError):
        verify(receiver.webhook_secret, retried, body.replace(b"Patient", b"Patiend", 1), time.time())
    document = orjson.loads(receiver.hooks[0])
    assert document_rule_errors(document) == []
    assert {e.state for e in ledger(app)} == {"sent"}
    # A tampered request sent over HTTP is refused by the receiver's check.
    import requests

    tampered = requests.post(receiver.hook_url, data=body + b" ", headers=dict(retried), timeout=5)
    assert tampered.status_code == 401
    with app.extensions["horizon.db"].reader() as conn:
        stored = conn.exec_driver_sql("SELECT headers, signer FROM sync_outbox").all()
    assert all("Signature" not in (h or "") and s == "webhook-hmac-sha256" for h, s in stored)


def test_consent_withdrawn_after_preparation_sends_nothing(hook_app):
    app, receiver, body = hook_app
    scan_changes(app)
    assert {e.state for e in ledger(app)} == {"prepared"}
    client = app.test_client()
    put(
        client,
        headers_for(app, "clinic"),
        "patients",
        {**body["patients"][0], "consent": {"share_with_referrer": False}},
    )
    transport.deliver(app, "dr-hook")
    run_jobs(app, "dr-hook")
    assert receiver.hook_attempts == []
    entries = ledger(app)
    assert {e.state for e in entries} == {"dead"}
    assert entries[0].detail == "not sent: consent does not allow sharing with this referrer"


def test_a_refused_document_is_a_dead_letter_and_a_retry_ends_sent(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url))
    client, admin = app.test_client(), headers_for(app, "admin")
    post_batch(client, headers_for(app, "clinic"), series_batch())
    receiver.fail_next(1, 400, body=outcome("Composition.section is not allowed here", "business-rule"))
    run_jobs(app, "dr-ref")
    (entry,) = ledger(app)
    assert entry.state == "dead"
    assert entry.detail.startswith("HTTP 400 (issue codes: business-rule); partner's answer on dead letter")
    letters = client.get("/admin/api/dead-letters?destination=dr-ref", headers=admin).json["dead_letters"]
    assert len(letters) == 1 and letters[0]["path"] == "Bundle" and letters[0]["last_status"] == 400
    assert letters[0]["response"]["issue"][0]["code"] == "business-rule"
    # The partner fixed its rules; the admin retries once: the version is in flight, then sent.
    answer = client.post(f"/admin/api/dead-letters/{letters[0]['id']}/retry", headers=admin)
    assert answer.status_code == 202 and answer.json["requeued"] is True
    deadline = time.monotonic() + 15
    while ledger(app)[0].state != "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ledger(app)[0].state == "sent"
    assert len(created(receiver, "Bundle")) == 1 and len(created(receiver, "DocumentReference")) == 1
    again = client.post(f"/admin/api/dead-letters/{letters[0]['id']}/retry", headers=admin)
    assert again.json["requeued"] is False


def test_a_dead_letter_is_not_retried_after_consent_was_withdrawn(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url))
    client, admin, clinic = app.test_client(), headers_for(app, "admin"), headers_for(app, "clinic")
    body = series_batch()
    post_batch(client, clinic, body)
    receiver.fail_next(1, 400)
    run_jobs(app, "dr-ref")
    assert [e.state for e in ledger(app)] == ["dead"]
    patient = {**body["patients"][0], "consent": {"share_with_referrer": False}}
    put(client, clinic, "patients", patient)
    before = len(receiver.requests)
    (letter,) = client.get("/admin/api/dead-letters", headers=admin).json["dead_letters"]
    refused = client.post(f"/admin/api/dead-letters/{letter['id']}/retry", headers=admin)
    assert refused.status_code == 409 and "consent does not allow" in refused.get_data(as_text=True)
    run_jobs(app, "dr-ref")
    assert created(receiver, "Bundle") == [] and len(receiver.requests) == before
    assert client.get("/admin/api/dead-letters", headers=admin).json["dead_letters"][0]["status"] == "dead"


def test_a_superseded_dead_version_is_not_retried(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url))
    client, admin, clinic = app.test_client(), headers_for(app, "admin"), headers_for(app, "clinic")
    body = series_batch()
    post_batch(client, clinic, body)
    run_jobs(app, "dr-ref")  # version 1 sent
    receiver.fail_next(1, 422)
    put(client, clinic, "sessions", {**body["sessions"][-1], "note": "Corrected once."})
    run_jobs(app, "dr-ref")  # version 2 refused
    put(client, clinic, "sessions", {**body["sessions"][-1], "note": "Corrected twice."})
    run_jobs(app, "dr-ref")  # version 3 (replaces version 1) sent
    states = [(e.version, e.state) for e in ledger(app)]
    assert states == [(1, "sent"), (2, "dead"), (3, "sent")]
    (letter,) = client.get("/admin/api/dead-letters", headers=admin).json["dead_letters"]
    refused = client.post(f"/admin/api/dead-letters/{letter['id']}/retry", headers=admin)
    assert refused.status_code == 409 and "superseded by version 3" in refused.get_data(as_text=True)
    assert client.get("/admin/api/dead-letters", headers=admin).json["dead_letters"][0]["status"] == "dead"
    assert [e.state for e in ledger(app)] == ["sent", "dead", "sent"]


def test_a_paused_referrer_sends_nothing_until_resumed(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url))
    client, admin = app.test_client(), headers_for(app, "admin")
    post_batch(client, headers_for(app, "clinic"), series_batch())
    assert client.post("/admin/api/destinations/dr-ref/pause", headers=admin).status_code == 200
    run_jobs(app, "dr-ref")
    assert receiver.requests == [] and [e.state for e in ledger(app)] == ["prepared"]
    listed = {d["name"]: d for d in client.get("/admin/api/destinations", headers=admin).json["destinations"]}
    assert listed["dr-ref"]["outbox_depth"] == 2 and listed["dr-ref"]["delivers"] is False
    assert client.post("/admin/api/destinations/dr-ref/resume", headers=admin).status_code == 200
    run_jobs(app, "dr-ref")
    assert [e.state for e in ledger(app)] == ["sent"] and len(receiver.created) == 2


def test_a_disabled_referrer_is_not_delivered(make_app, receivers):
    receiver = receivers()
    app = make_app(referrer_table("dr-ref", "prac-0003", receiver.url, enabled="false"))
    post_batch(app.test_client(), headers_for(app, "clinic"), series_batch())
    assert run_jobs(app, "dr-ref") == [{"referrer": "dr-ref", "skipped": "disabled"}]
    assert receiver.requests == [] and ledger(app) == []
