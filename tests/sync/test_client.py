"""The destination HTTP client (unit tests with `responses`): origin only, no redirects, 401 refresh once,
extra headers, SMART client assertions signed with our key."""

import jwt
import pytest
import requests
import responses

from integration.auth.signing_keys import KeyStore
from integration.settings import Settings
from integration.sync.auth import AuthError
from integration.sync.client import FhirClient, TransportError
from integration.sync.destinations import parse

BASE = "https://ehr.example.org/fhir"
TOKEN_URL = "https://login.example.org/token"


def _destination(auth=None, **extra):
    entry = {
        "name": "north",
        "kind": "ehr",
        "base_url": BASE,
        "schedule": {"every_seconds": 60},
        "auth": auth or {"type": "none"},
        "headers": {"Epic-Client-ID": "abc"},
        **extra,
    }
    return parse({"destination": [entry]})[0]


@pytest.fixture
def settings(tmp_path):
    return Settings.load(environ={}, signing_keys_dir=str(tmp_path / "keys"))


def test_only_paths_under_the_base_url(settings):
    client = FhirClient(_destination(), settings)
    assert client.url("Patient/1") == f"{BASE}/Patient/1"
    for bad in ("https://evil.example.org/x", "//evil.example.org/x", "../admin", "Patient/../../x"):
        with pytest.raises(ValueError, match=r"relative|origin"):
            client.url(bad)


@responses.activate
def test_redirects_are_not_followed_and_headers_are_sent(settings):
    responses.put(f"{BASE}/Patient/1", status=302, headers={"Location": "https://evil.example.org/"})
    answer = FhirClient(_destination(), settings).request("PUT", "Patient/1", b"{}")
    assert answer.status == 302 and len(responses.calls) == 1
    sent = responses.calls[0].request.headers
    assert sent["Epic-Client-ID"] == "abc" and sent["Content-Type"] == "application/fhir+json"
    assert "Authorization" not in sent


@responses.activate
def test_connection_errors_are_transport_errors(settings):
    responses.put(f"{BASE}/Patient/1", body=requests.ConnectionError("reset"))
    with pytest.raises(TransportError):
        FhirClient(_destination(), settings).request("PUT", "Patient/1", b"{}")


@responses.activate
def test_bearer_from_env_and_missing_env(settings, monkeypatch):
    responses.get(f"{BASE}/metadata", json={})
    dest = _destination({"type": "bearer", "token_env": "NORTH_TOKEN"})
    with pytest.raises(AuthError, match="NORTH_TOKEN"):
        FhirClient(dest, settings).request("GET", "metadata")
    monkeypatch.setenv("NORTH_TOKEN", "tok")
    FhirClient(dest, settings).request("GET", "metadata")
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer tok"


@responses.activate
def test_smart_backend_signs_with_our_active_key_and_refreshes_once_on_401(settings):
    key = KeyStore.from_settings(settings).create("ES384")
    issued = iter(["first", "second"])
    assertions = []

    def token(request):
        form = dict(x.split("=", 1) for x in request.body.split("&"))
        assertions.append(form["client_assertion"])
        return 200, {}, f'{{"access_token": "{next(issued)}", "expires_in": 300}}'

    responses.add_callback(responses.POST, TOKEN_URL, callback=token)
    responses.put(f"{BASE}/Patient/1", status=401)
    responses.put(f"{BASE}/Patient/1", status=200)
    dest = _destination(
        {"type": "smart-backend", "client_id": "cid", "token_url": TOKEN_URL, "scope": "system/Patient.write"}
    )
    client = FhirClient(dest, settings)
    assert client.request("PUT", "Patient/1", b"{}").status == 200
    puts = [c.request for c in responses.calls if c.request.method == "PUT"]
    assert [r.headers["Authorization"] for r in puts] == ["Bearer first", "Bearer second"]
    header = jwt.get_unverified_header(assertions[0])
    assert header["kid"] == key.kid and header["alg"] == "ES384"
    public = jwt.PyJWK(key.jwk).key
    claims = jwt.decode(assertions[0], public, algorithms=["ES384"], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == "cid" and claims["exp"] - claims["iat"] <= 300
    assert assertions[0] != assertions[1]  # a fresh jti each time


@responses.activate
def test_refused_token_is_an_auth_error(settings):
    KeyStore.from_settings(settings).create("RS384")
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_client"})
    dest = _destination({"type": "smart-backend", "client_id": "cid", "token_url": TOKEN_URL, "scope": "s"})
    with pytest.raises(AuthError, match="400") as caught:
        FhirClient(dest, settings).request("GET", "metadata")
    assert not caught.value.temporary
