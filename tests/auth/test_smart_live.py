"""SMART over real HTTP (waitress on 127.0.0.1, requests): the full flow, concurrent replays, JWKS URLs."""

import dataclasses
import threading

import pytest
import requests

from integration.auth.smart_clients import RegistrationError
from tests.auth.test_smart_support import (
    JwksServer,
    add_probe,
    assertion,
    audit_rows,
    ec_key,
    form,
    public_jwk,
    reason,
    register,
    rsa_key,
)


@pytest.fixture
def jwks_server():
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def settings(settings, jwks_server):
    return dataclasses.replace(settings, smart_jwks_url_allowlist=f"{jwks_server.base}/jwks/")


@pytest.fixture
def app(app):
    add_probe(app)
    return app


def test_full_flow_over_http(live_server, db):
    client_id = register(db, scope="system/Observation.rs system/Patient.rs", group_id="referrer-7")
    discovery = requests.get(f"{live_server}/.well-known/smart-configuration", timeout=5).json()
    # The assertion names the configured token URL, not the address this test server happens to use.
    signed = assertion(client_id, key=ec_key(), alg="ES384", kid="ec-1", aud=discovery["token_endpoint"])
    response = requests.post(f"{live_server}/auth/token", data=form(signed, scope="system/*.read"), timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["scope"] == "system/Observation.read system/Patient.read"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    read = requests.get(f"{live_server}/probe/Patient/read", headers=headers, timeout=5)
    assert read.json() == {"client_id": client_id, "scope": body["scope"], "group_id": "referrer-7"}
    assert requests.get(f"{live_server}/probe/Encounter/read", headers=headers, timeout=5).status_code == 403
    replay = requests.post(f"{live_server}/auth/token", data=form(signed), timeout=5)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")


def test_concurrent_requests_with_one_jti_issue_exactly_one_token(live_server, db):
    client_id = register(db)
    signed = assertion(client_id, jti="raced")
    workers = 6
    barrier = threading.Barrier(workers)
    statuses: list[int] = []

    def attempt() -> None:
        barrier.wait()
        statuses.append(requests.post(f"{live_server}/auth/token", data=form(signed), timeout=30).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [401] * (workers - 1)
    assert sorted(reason(r) for r in audit_rows(db)) == ["issued"] + ["replayed_jti"] * (workers - 1)


def test_jwks_url_client_gets_tokens_and_the_set_is_cached(client, db, jwks_server):
    url = jwks_server.publish("/jwks/ehr.json", {"keys": [public_jwk(rsa_key(), "rsa-1")]})
    client_id = register(db, jwks_url=url, jwks_allowlist=[f"{jwks_server.base}/jwks/"])
    for _ in range(2):
        response = client.post("/auth/token", data=form(assertion(client_id)))
        assert response.status_code == 200, response.json
    assert jwks_server.hits == ["/jwks/ehr.json"]


@pytest.mark.parametrize(
    ("status", "headers", "document"),
    [
        pytest.param(302, {"Location": "/jwks/good.json"}, {}, id="redirect-not-followed"),
        pytest.param(500, {}, {}, id="server-error"),
        pytest.param(200, {}, b"<html>", id="not-json"),
        pytest.param(200, {}, {"keys": [{**public_jwk(rsa_key(), "rsa-1"), "d": "AAAA"}]}, id="private-key"),
    ],
)
def test_unusable_jwks_url_refuses_the_client(client, db, jwks_server, status, headers, document):
    jwks_server.publish("/jwks/good.json", {"keys": [public_jwk(rsa_key(), "rsa-1")]})
    url = jwks_server.publish("/jwks/ehr.json", document, status=status, headers=headers)
    client_id = register(db, jwks_url=url, jwks_allowlist=[f"{jwks_server.base}/jwks/"])
    response = client.post("/auth/token", data=form(assertion(client_id)))
    assert (response.status_code, response.json["error"]) == (401, "invalid_client")
    assert [reason(r) for r in audit_rows(db)] == ["jwks_unavailable"]
    assert "/jwks/good.json" not in jwks_server.hits


def test_jwks_url_must_stay_on_the_allow_list(app, client, db, jwks_server):
    url = jwks_server.publish("/jwks/ehr.json", {"keys": [public_jwk(rsa_key(), "rsa-1")]})
    outside = jwks_server.publish("/other/ehr.json", {"keys": [public_jwk(rsa_key(), "rsa-1")]})
    allowlist = [f"{jwks_server.base}/jwks/"]
    with pytest.raises(RegistrationError, match="allow-list"):
        register(db, name="outside", jwks_url=outside, jwks_allowlist=allowlist)
    client_id = register(db, jwks_url=url, jwks_allowlist=allowlist)
    # Taking the prefix off the allow-list disables the client before any fetch.
    settings = app.config["HORIZON_SETTINGS"]
    app.config["HORIZON_SETTINGS"] = dataclasses.replace(settings, smart_jwks_url_allowlist="")
    response = client.post("/auth/token", data=form(assertion(client_id)))
    assert (response.status_code, response.json["error"]) == (401, "invalid_client")
    assert jwks_server.hits == []
