"""Audit rows of the Bulk Data status, download and cancel requests name the client, refused ones too."""

import dataclasses

import pytest
from sqlalchemy import select

from integration.fhir_api.export_runner import runner
from integration.store.schema import audit_event
from tests.auth.test_smart_support import assertion, form, register
from tests.fhir_api.test_bulk_export import ASYNC, status_path, stored, wait  # noqa: F401


@pytest.fixture
def settings(settings, tmp_path):
    return dataclasses.replace(settings, export_dir=str(tmp_path / "exports"))


@pytest.fixture
def app(app):
    yield app
    runner(app).shutdown()


def _client(client, db, name):
    client_id = register(db, name=name)
    response = client.post("/auth/token", data=form(assertion(client_id)))
    return client_id, {"Authorization": f"Bearer {response.json['access_token']}"}


def _rows(db, action):
    t = audit_event.c
    with db.reader() as conn:
        return [tuple(r) for r in conn.execute(select(t.actor, t.role, t.outcome).where(t.action == action))]


def test_status_download_and_cancel_are_audited_with_the_client_that_asked(client, db, stored):  # noqa: F811
    mine, mine_headers = _client(client, db, "ehr-owner")
    theirs, their_headers = _client(client, db, "ehr-other")
    path = status_path(client.get("/fhir/$export?_type=Patient", headers={**mine_headers, **ASYNC}))
    manifest = wait(client, path, mine_headers).json
    file_path = manifest["output"][0]["url"].removeprefix("http://127.0.0.1:8000")
    assert client.get(file_path, headers=mine_headers).status_code == 200
    assert client.get(path, headers=their_headers).status_code == 404
    assert client.get(file_path, headers=their_headers).status_code == 404
    assert client.delete(path, headers=their_headers).status_code == 404
    assert client.delete(path, headers=mine_headers).status_code == 202
    status_rows = _rows(db, "fhir.export.status")
    assert (mine, "smart-client", 200) in status_rows and (theirs, "smart-client", 404) in status_rows
    assert all(actor in (mine, theirs) for actor, _, _ in status_rows)
    assert _rows(db, "fhir.export.download") == [(mine, "smart-client", 200), (theirs, "smart-client", 404)]
    assert _rows(db, "fhir.export.cancel") == [(theirs, "smart-client", 404), (mine, "smart-client", 202)]
