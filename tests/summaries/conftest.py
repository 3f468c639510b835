"""Fixtures: a full synthetic series ingested through the real intake API, and summaries built from it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from integration.ingest import synthetic
from integration.summaries.model import Period
from integration.summaries.service import build
from mappings.ids import resource_id

# Frozen generation time at a non-UTC offset, so goldens catch any timezone slip.
GENERATED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-8)))


def post_batch(client, headers, body) -> None:
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(body), headers=headers, content_type="application/json"
    )
    assert response.status_code == 200, response.json
    assert response.json["summary"]["rejected"] == 0, response.json


def full_series_batch() -> dict:
    """Three patients with six sessions each (one series of six)."""
    return synthetic.batch(seed=7, n_patients=3, sessions_per_patient=6)


def patient_fhir_id(mrn: str) -> str:
    return resource_id("patient", mrn)


@pytest.fixture
def series(client, clinic_headers) -> dict:
    body = full_series_batch()
    post_batch(client, clinic_headers, body)
    return body


@pytest.fixture
def first_patient(series) -> str:
    return patient_fhir_id(series["patients"][0]["id"])


@pytest.fixture
def one_series(client, clinic_headers) -> dict:
    """One patient's series of six (with stopped sessions, adverse events and recorded allergies): cheaper
    to ingest, for the tests that need only one patient."""
    body = synthetic.batch(seed=2, n_patients=1, sessions_per_patient=6)
    post_batch(client, clinic_headers, body)
    return body


@pytest.fixture
def one_patient(one_series) -> str:
    return patient_fhir_id(one_series["patients"][0]["id"])


@pytest.fixture
def builder(app):
    """Build a patient's summary (whole course by default), generated at the frozen time."""

    def make(patient_id: str, period: Period | None = None):
        return build(
            app.extensions["horizon.db"],
            app.config["HORIZON_SETTINGS"],
            app.extensions["horizon.mapping"],
            patient_id,
            period or Period(),
            now=GENERATED_AT,
        )

    return make


@pytest.fixture
def built(builder, first_patient):
    """The first patient of the three-patient series."""
    return lambda patient_id=first_patient, period=None: builder(patient_id, period)
