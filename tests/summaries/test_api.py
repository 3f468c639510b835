"""GET /admin/api/summaries/preview on both databases: auth, errors, every format, the audit trail."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from sqlalchemy import select

from integration.store.schema import audit_event

URL = "/admin/api/summaries/preview"


@pytest.fixture
def admin_headers(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


def _audits(db, action="summary.preview"):
    with db.reader() as conn:
        rows = conn.execute(
            select(audit_event).where(audit_event.c.action == action).order_by(audit_event.c.pk)
        )
        return [dict(r._mapping) for r in rows]


def test_needs_an_admin_token(client, clinic_headers, one_patient):
    url = f"{URL}?patient={one_patient}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    refused = client.get(url, headers=clinic_headers)
    assert refused.status_code == 403
    assert b"<html" not in refused.data and b"Ketamine" not in refused.data


@pytest.mark.parametrize(
    ("fmt", "media_type", "starts"),
    [
        ("html", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
        ("pdf", "application/pdf", b"%PDF-"),
        ("ccda", "application/xml", b"<?xml"),
        ("fhir", "application/fhir+json", b'{"resourceType":"Bundle"'),
    ],
)
def test_every_format(client, admin_headers, one_patient, db, fmt, media_type, starts):
    response = client.get(f"{URL}?patient={one_patient}&format={fmt}", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == media_type
    assert response.data.startswith(starts)
    (entry,) = _audits(db)
    assert (entry["patient_id"], entry["outcome"], entry["actor"]) == (one_patient, 200, "clinic-admin")
    if fmt == "html":
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    if fmt == "ccda":
        assert etree.fromstring(response.data).tag == "{urn:hl7-org:v3}ClinicalDocument"


def test_unknown_patient_is_a_404_operation_outcome(client, admin_headers, db):
    response = client.get(f"{URL}?patient=no-such-patient&format=fhir", headers=admin_headers)
    assert response.status_code == 404
    body = response.json if response.is_json else json.loads(response.data)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"
    (entry,) = _audits(db)
    assert (entry["patient_id"], entry["outcome"]) == ("no-such-patient", 404)


@pytest.mark.parametrize(
    "query",
    ["format=docx", "format=", "", "since=yesterday", "since=2026-03-01&to=2026-02-01"],
)
def test_bad_requests_are_400(client, admin_headers, query):
    patient = "" if query == "" else "patient=some-patient&"
    response = client.get(f"{URL}?{patient}{query}", headers=admin_headers)
    assert response.status_code == 400
    assert b'"OperationOutcome"' in response.data


def test_period_narrows_the_summary(client, admin_headers, one_series, one_patient):
    starts = sorted(s["start"][:10] for s in one_series["sessions"])
    whole = client.get(f"{URL}?patient={one_patient}&format=fhir", headers=admin_headers)
    late = client.get(f"{URL}?patient={one_patient}&format=fhir&since={starts[3]}", headers=admin_headers)
    assert late.status_code == 200

    def procedures(response) -> int:
        return sum(
            1 for e in json.loads(response.data)["entry"] if e["resource"]["resourceType"] == "Procedure"
        )

    assert procedures(whole) == len(starts)
    assert procedures(late) == len(starts) - 3
