"""`flask clients register|list|revoke`: the printed id works at once; bad registrations are refused."""

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.test_smart_support import assertion, ec_key, form, jwks_text, public_jwk, rsa_key


@pytest.fixture
def settings(settings):
    # The http prefix is listed only to show that https is still required outside loopback.
    allowlist = "https://ehr.example.org/jwks/, http://ehr.example.org/jwks/"
    return dataclasses.replace(settings, smart_jwks_url_allowlist=allowlist)


@pytest.fixture
def jwks_file(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(jwks_text(public_jwk(rsa_key(), "rsa-1"), public_jwk(ec_key(), "ec-1")))
    return path


def test_register_list_revoke(app, client, jwks_file):
    runner = app.test_cli_runner()
    args = [
        "clients",
        "register",
        "--name",
        "st-marys",
        "--jwks-file",
        str(jwks_file),
        "--scopes",
        "system/*.rs",
    ]
    result = runner.invoke(args=[*args, "--group", "referrer-7"])
    assert result.exit_code == 0, result.output
    client_id = result.output.strip().splitlines()[-1]
    token = client.post("/auth/token", data=form(assertion(client_id), scope="system/Patient.rs"))
    assert token.status_code == 200, token.json

    url = "https://ehr.example.org/jwks/k.json"
    by_url = runner.invoke(
        args=[
            "clients",
            "register",
            "--name",
            "other",
            "--jwks-url",
            url,
            "--scopes",
            "system/Observation.read",
        ]
    )
    assert by_url.exit_code == 0, by_url.output
    listed = runner.invoke(args=["clients", "list"]).output.splitlines()
    assert f"{client_id}\tst-marys\tsystem/*.rs\treferrer-7\tjwks-file\tlive" in listed
    assert any(
        "\tother\tsystem/Observation.read\t-\tjwks-url https://ehr.example.org/jwks/k.json" in x
        for x in listed
    )

    assert runner.invoke(args=["clients", "revoke", client_id]).exit_code == 0
    assert "revoked" in runner.invoke(args=["clients", "list"]).output
    assert client.post("/auth/token", data=form(assertion(client_id))).status_code == 401
    again = runner.invoke(args=["clients", "revoke", client_id])
    assert again.exit_code != 0 and "no live client" in again.output


def test_bad_registrations_are_refused_with_the_reason(app, tmp_path, jwks_file):
    runner = app.test_cli_runner()
    good = public_jwk(rsa_key(), "rsa-1")
    files = {
        "private": (jwks_text(good | {"d": "AAAA", "p": "AAAA", "q": "AAAA"}), "private key material"),
        "p256": (jwks_text(public_jwk(ec.generate_private_key(ec.SECP256R1()), "p")), "RSA and EC P-384"),
        "no-kid": (jwks_text(public_jwk(rsa_key(), None)), "kid"),
        "symmetric": (jwks_text({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}), "private key material"),
        "empty": (jwks_text(), 'non-empty "keys"'),
        "not-json": ("{keys", "not valid JSON"),
    }
    cases = {}
    for name, (text, message) in files.items():
        (tmp_path / f"{name}.json").write_text(text)
        cases[name] = (["--jwks-file", str(tmp_path / f"{name}.json")], message)
    key = ["--jwks-file", str(jwks_file)]
    cases |= {
        "url-off-allow-list": (["--jwks-url", "https://ehr.example.org.evil.net/jwks/k.json"], "allow-list"),
        "url-other-path": (["--jwks-url", "https://ehr.example.org/jwks-evil/k.json"], "allow-list"),
        "url-http": (["--jwks-url", "http://ehr.example.org/jwks/k.json"], "must use https"),
        "url-credentials": (["--jwks-url", "https://u:p@ehr.example.org/jwks/k.json"], "credentials"),
        "both-key-sources": ([*key, "--jwks-url", "https://ehr.example.org/jwks/k.json"], "exactly one"),
        "no-key-source": ([], "exactly one"),
        "patient-scope": ([*key, "--scopes", "patient/*.rs"], "not system scopes"),
        "bad-v2-scope": ([*key, "--scopes", "system/Observation.sr"], "not system scopes"),
        "granular-scope": ([*key, "--scopes", "system/Observation.rs?category=x"], "not system scopes"),
        "bad-group": ([*key, "--group", "Group/../x"], "FHIR id"),
    }
    wrong = {}
    for name, (extra, message) in cases.items():
        scopes = [] if "--scopes" in extra else ["--scopes", "system/*.rs"]
        result = runner.invoke(args=["clients", "register", "--name", f"ehr-{name}", *scopes, *extra])
        if result.exit_code == 0 or message not in result.output:
            wrong[name] = result.output
    assert wrong == {}
    assert runner.invoke(args=["clients", "list"]).output == ""
    dup = ["clients", "register", "--name", "dup", *key, "--scopes", "system/*.rs"]
    assert runner.invoke(args=dup).exit_code == 0
    second = runner.invoke(args=dup)
    assert second.exit_code != 0 and "already exists" in second.output
