"""Webhook signatures: unit checks, and a real receiver on 127.0.0.1 that verifies a prepared delivery."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
import requests

from integration.summaries.delivery_payloads import materialize
from integration.summaries.ledger import SummaryLedger
from integration.summaries.webhook_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signature,
    signed_headers,
    verify,
)
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import preparer, referrer, series_batch

SECRET = "whsec-test-0123456789"
T0 = 1_767_225_600


def test_round_trip_and_every_refusal():
    body = b'{"resourceType":"Bundle"}'
    headers = signed_headers(SECRET, body, T0)
    assert headers[SIGNATURE_HEADER] == f"v1={signature(SECRET, T0, body)}"
    assert verify(SECRET, headers, body, now=T0 + 299) == T0
    assert verify(SECRET, {k.lower(): v for k, v in headers.items()}, body, now=T0) == T0
    cases = {
        "does not match": (SECRET, headers, body + b" "),
        "tolerance": (SECRET, headers, body),
        "Timestamp": (SECRET, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, body),
        "expected v1": (SECRET, {TIMESTAMP_HEADER: str(T0), SIGNATURE_HEADER: "v0=abc"}, body),
    }
    for message, (secret, h, b) in cases.items():
        now = T0 + 301 if message == "tolerance" else T0
        with pytest.raises(SignatureError, match=message):
            verify(secret, h, b, now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify("another-secret", headers, body, now=T0)
    # The timestamp is signed too: moving it breaks the signature.
    moved = {**headers, TIMESTAMP_HEADER: str(T0 + 1)}
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, moved, body, now=T0)


def test_rotation_accepts_either_secret():
    body = b"{}"
    old, new = signed_headers("old-secret", body, T0), signed_headers("new-secret", body, T0)
    both = {TIMESTAMP_HEADER: str(T0), SIGNATURE_HEADER: f"{old[SIGNATURE_HEADER]},{new[SIGNATURE_HEADER]}"}
    assert verify("new-secret", both, body, now=T0) == T0
    assert verify(["old-secret", "new-secret"], new, body, now=T0) == T0


class _Receiver(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            verify(SECRET, dict(self.headers.items()), body, now=time.time())
        except SignatureError as exc:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(str(exc).encode())
            return
        self.server.received.append(body)  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_real_receiver_verifies_a_prepared_delivery(app, db, client, clinic_headers, receiver):
    body = series_batch()
    post_batch(client, clinic_headers, body)
    patient = patient_fhir_id(body["patients"][0]["id"])
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/horizon"
    hook = referrer(channel="webhook", url=url, secret_env="REF_SECRET")
    with db.writer() as conn:
        SummaryLedger(conn).add_due(patient, hook.name, ["safety-signal"], datetime.now(UTC))
    (pk,) = preparer(app, hook).prepare_due()
    with db.reader() as conn:
        entry = SummaryLedger(conn).get(pk)
    (request,) = materialize(orjson.loads(entry.payload), hook, {"REF_SECRET": SECRET}, now=time.time())
    assert request.url == url
    # Direct send here only to prove the signature end to end; production sends through the outbox.
    ok = requests.post(request.url, data=request.body, headers=request.headers, timeout=10)
    assert ok.status_code == 204
    (delivered,) = receiver.received
    assert orjson.loads(delivered)["resourceType"] == "Bundle"
    assert orjson.loads(delivered)["type"] == "document"
    tampered = requests.post(
        request.url, data=request.body.replace(b"Bundle", b"Bundlf", 1), headers=request.headers, timeout=10
    )
    assert tampered.status_code == 401 and b"does not match" in tampered.content
    (stale,) = materialize(orjson.loads(entry.payload), hook, {"REF_SECRET": SECRET}, now=time.time() - 600)
    refused = requests.post(stale.url, data=stale.body, headers=stale.headers, timeout=10)
    assert refused.status_code == 401 and b"tolerance" in refused.content
    assert len(receiver.received) == 1
