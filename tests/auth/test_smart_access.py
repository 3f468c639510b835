"""require_scope, as the FHIR API will call it: 401 without a live token, 403 beyond the granted scopes."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from integration.store.schema import smart_access_token
from tests.auth.test_smart_support import add_probe, assertion, audit_rows, form, reason, register, revoke


@pytest.fixture
def app(app):
    add_probe(app)
    return app


def get_token(client, client_id, scope="system/Observation.rs"):
    response = client.post("/auth/token", data=form(assertion(client_id), scope=scope))
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_token_allows_exactly_its_scopes(client, db):
    client_id = register(db, scope="system/*.rs", group_id="referrer-7")
    headers = bearer(get_token(client, client_id))
    for path in ("/probe/Observation/read", "/probe/Observation/search", "/probe/Observation/vread"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, path
    assert response.json == {
        "client_id": client_id,
        "scope": "system/Observation.rs",
        "group_id": "referrer-7",
    }
    for path in ("/probe/Patient/read", "/probe/Observation/create", "/probe/Observation/delete"):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 403, path
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    rows = audit_rows(db, "smart.refused")
    assert [(r["actor"], r["outcome"], reason(r)) for r in rows] == [
        (client_id, 403, "insufficient-scope")
    ] * 3


def test_v1_scope_grants_read_and_search(client, db):
    client_id = register(db, scope="system/*.read")
    headers = bearer(get_token(client, client_id, scope="system/Patient.read"))
    assert client.get("/probe/Patient/read", headers=headers).status_code == 200
    assert client.get("/probe/Patient/search", headers=headers).status_code == 200
    assert client.get("/probe/Patient/update", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer hzs_not-a-real-token", "Token abc"]
)
def test_missing_or_unknown_token_is_401(client, db, header):
    response = client.get("/probe/Observation/read", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="horizon"')
    # RFC 6750 section 3.1: an error code only when a token was actually presented.
    presented = header is not None and header.startswith("Bearer ") and header.strip() != "Bearer"
    assert ('error="invalid_token"' in challenge) == presented
    (row,) = audit_rows(db, "smart.refused")
    assert row["outcome"] == 401 and row["actor"] is None


def test_clinic_api_token_is_not_a_smart_token(client, clinic_token):
    assert client.get("/probe/Observation/read", headers=bearer(clinic_token)).status_code == 401


def test_expired_token_is_401(client, db):
    token = get_token(client, register(db))
    assert client.get("/probe/Observation/read", headers=bearer(token)).status_code == 200
    with db.writer() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        conn.execute(update(smart_access_token).values(expires_at=past))
    response = client.get("/probe/Observation/read", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoking_the_client_ends_its_tokens_at_once(client, db):
    client_id = register(db)
    token = get_token(client, client_id)
    revoke(db, client_id)
    assert client.get("/probe/Observation/read", headers=bearer(token)).status_code == 401
    refused = client.post("/auth/token", data=form(assertion(client_id)))
    assert (refused.status_code, refused.json["error"]) == (401, "invalid_client")


def test_token_lifetime_is_capped_at_300_seconds(app, client, db):
    settings = app.config["HORIZON_SETTINGS"]
    app.config["HORIZON_SETTINGS"] = dataclasses.replace(settings, smart_token_lifetime_seconds=3600)
    client_id = register(db)
    response = client.post("/auth/token", data=form(assertion(client_id)))
    assert response.json["expires_in"] == 300
    app.config["HORIZON_SETTINGS"] = dataclasses.replace(settings, smart_token_lifetime_seconds=60)
    assert client.post("/auth/token", data=form(assertion(client_id))).json["expires_in"] == 60


# Every FHIR interaction on the real routes (not the probe): the same refusals, each audited.
FHIR_INTERACTIONS = [
    ("GET", "/fhir/Observation/{id}"),
    ("GET", "/fhir/Observation/{id}/_history/1"),
    ("GET", "/fhir/Observation/{id}/_history"),
    ("GET", "/fhir/Observation?code=8867-4"),
    ("POST", "/fhir/Observation/_search"),
    ("GET", "/fhir/Observation/_history"),
    ("GET", "/fhir/_history"),
]


def _call(client, method, path, headers):
    url = path.format(id="any-id")  # refusals come before any lookup
    if method == "POST":
        return client.post(url, data={"code": "8867-4"}, headers=headers)
    return client.get(url, headers=headers)


@pytest.mark.parametrize(("method", "path"), FHIR_INTERACTIONS)
def test_fhir_interactions_refuse_a_missing_or_dead_token_with_401(client, db, method, path):
    client_id = register(db)
    token = get_token(client, client_id)
    with db.writer() as conn:  # the token record is gone (purged): fail closed
        conn.execute(delete(smart_access_token))
    for headers in ({}, bearer(token)):
        response = _call(client, method, path, headers)
        assert response.status_code == 401, (path, headers)
        assert response.json["resourceType"] == "OperationOutcome"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="horizon"')
    rows = audit_rows(db, "smart.refused")
    assert [(r["outcome"], reason(r)) for r in rows] == [(401, "missing-token"), (401, "invalid-token")]


@pytest.mark.parametrize(("method", "path"), FHIR_INTERACTIONS)
def test_fhir_interactions_beyond_the_scope_are_403(client, db, method, path):
    client_id = register(db, scope="system/*.rs")
    headers = bearer(get_token(client, client_id, scope="system/Patient.r"))  # no search, no Observation
    response = _call(client, method, path, headers)
    assert response.status_code == 403, path
    assert response.json["resourceType"] == "OperationOutcome"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    rows = audit_rows(db, "smart.refused")
    assert [(r["actor"], r["outcome"], reason(r)) for r in rows] == [(client_id, 403, "insufficient-scope")]
