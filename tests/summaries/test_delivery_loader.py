"""The delivery loader's reads of the change feed on both databases, through the real intake API."""

from __future__ import annotations

import orjson
import pytest

from integration.store.resources import ResourceRepository
from integration.summaries.delivery_loader import changes_by_patient
from mappings.ids import resource_id
from tests.summaries.conftest import patient_fhir_id, post_batch
from tests.summaries.delivery_helpers import series_batch

OTHER_MRN = "MRN200001"


@pytest.fixture
def body(client, clinic_headers) -> dict:
    b = series_batch()
    other = {**b["patients"][0], "id": OTHER_MRN, "given": ["Ruth"], "family": "Okafor"}
    other.pop("identifiers", None)
    post_batch(client, clinic_headers, {**b, "patients": [*b["patients"], other]})
    return b


def _head(db) -> int:
    with db.reader() as conn:
        rows = ResourceRepository(conn).changes_since(0, 1_000_000)
    return int(rows[-1]["seq"])


def _move(client, headers, session: dict, mrn: str) -> None:
    response = client.put(
        f"/api/v1/sessions/{session['id']}",
        data=orjson.dumps({**session, "patient_id": mrn}),
        headers=headers,
        content_type="application/json",
    )
    assert response.status_code == 200, response.json


def test_a_moved_resource_is_a_change_of_both_patients(db, client, clinic_headers, body):
    first, other = patient_fhir_id(body["patients"][0]["id"]), patient_fhir_id(OTHER_MRN)
    seen = _head(db)
    session = body["sessions"][2]
    _move(client, clinic_headers, session, OTHER_MRN)
    with db.reader() as conn:
        last, changed = changes_by_patient(conn, seen, 1000)
    encounter = f"Encounter/{resource_id('session', session['id'])}"
    procedure = f"Procedure/{resource_id('session-procedure', session['id'])}"
    assert last > seen
    assert {encounter, procedure} <= changed[other]
    assert {encounter, procedure} <= changed[first]  # the patient it left must hear of it too


def test_an_edit_that_keeps_the_patient_names_only_that_patient(db, client, clinic_headers, body):
    first = patient_fhir_id(body["patients"][0]["id"])
    seen = _head(db)
    session = body["sessions"][2]
    _move(client, clinic_headers, {**session, "note": "Amended after review"}, session["patient_id"])
    with db.reader() as conn:
        _, changed = changes_by_patient(conn, seen, 1000)
    assert list(changed) == [first]
