"""Fixtures: a full synthetic series ingested through the real intake API, and summaries built from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from integration.app import create_app
from integration.ingest import synthetic
from integration.settings import Settings
from integration.summaries.model import Period
from integration.summaries.service import build
from mappings.ids import resource_id
from tests.sync.receiver import Receiver

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


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    started: list[Receiver] = []

    def make() -> Receiver:
        started.append(Receiver().start())
        return started[-1]

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """An app whose destinations file holds the given TOML."""
    apps: list[Any] = []

    def make(toml: str) -> Any:
        path = tmp_path / f"destinations-{len(apps)}.toml"
        path.write_text(toml)
        settings = Settings.load(
            environ={},
            database_url=database_url,
            log_level="WARNING",
            db_pool_size=4,
            destinations_file=str(path),
        )
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["horizon.db"].engine.dispose()
