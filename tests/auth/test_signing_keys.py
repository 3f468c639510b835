"""Our own signing keys: CLI life cycle, file safety, the public JWKS, assertions verifying against it."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from integration.auth.signing_keys import (
    STATE_FILE,
    KeyStore,
    SigningKeyError,
    active_signer,
    thumbprint,
)
from integration.auth.smart_keys import validate_key
from integration.settings import Settings

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}  # RFC 7518 section 6
PUBLIC_MEMBERS = {"RSA": {"kty", "kid", "alg", "use", "key_ops", "n", "e"}}
PUBLIC_MEMBERS["EC"] = {"kty", "kid", "alg", "use", "key_ops", "crv", "x", "y"}


@pytest.fixture
def keys_dir(app, tmp_path: Path) -> Path:
    """Point the app's signing_keys_dir at a directory that does not exist yet."""
    directory = tmp_path / "secrets" / "keys"
    settings = app.config["HORIZON_SETTINGS"]
    app.config["HORIZON_SETTINGS"] = dataclasses.replace(settings, signing_keys_dir=str(directory))
    return directory


def run(app, *args: str) -> tuple[int, list[str]]:
    result = app.test_cli_runner().invoke(args=["keys", *args])
    return result.exit_code, result.output.strip().splitlines()


def ok(app, *args: str) -> str:
    """Run a keys command that must succeed; return the kid it prints last."""
    code, lines = run(app, *args)
    assert code == 0, lines
    return lines[-1]


def published(client) -> list[dict]:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.mimetype == "application/json"
    keys = response.json["keys"]
    for jwk in keys:
        assert not PRIVATE_MEMBERS & jwk.keys(), jwk
        assert set(jwk) == PUBLIC_MEMBERS[jwk["kty"]]
        assert (jwk["use"], jwk["key_ops"]) == ("sig", ["verify"])
        assert jwk["kid"] == thumbprint(jwk)
        validate_key(jwk)  # what we demand of the EHRs' keys, we meet ourselves
    return keys


def test_jwks_is_an_empty_set_before_any_key(client, keys_dir):
    assert published(client) == []
    assert not keys_dir.exists()  # reading never creates the directory


def test_create_rotate_retire_list(app, client, keys_dir):
    first = ok(app, "create")  # RS384 by default
    assert [(k["kid"], k["alg"], k["kty"]) for k in published(client)] == [(first, "RS384", "RSA")]

    second = ok(app, "rotate", "--alg", "ES384")
    keys = published(client)
    assert [(k["kid"], k["alg"]) for k in keys] == [(first, "RS384"), (second, "ES384")]
    assert keys[1]["crv"] == "P-384"

    third = ok(app, "rotate")
    assert [k["kid"] for k in published(client)] == [first, second, third]

    code, lines = run(app, "list")
    assert code == 0 and lines[-1] == third
    rows = [line.split("\t") for line in lines[:-1]]
    assert [r[:3] for r in rows] == [
        [first, "RS384", "published"],
        [second, "ES384", "published"],
        [third, "RS384", "active"],
    ]
    assert all(r[3].endswith("+00:00") for r in rows)
    assert "PRIVATE" not in "".join(lines)

    assert ok(app, "retire", first) == first
    assert [k["kid"] for k in published(client)] == [second, third]
    assert not (keys_dir / f"{first}.pem").exists()
    assert [line.split("\t")[2] for line in run(app, "list")[1][:-1]] == ["retired", "published", "active"]
    assert sorted(p.name for p in keys_dir.iterdir()) == sorted(
        [".lock", STATE_FILE, f"{second}.pem", f"{third}.pem"]
    )  # no temporary file is left behind


def test_files_are_private(app, keys_dir):
    kid = ok(app, "create", "--alg", "ES384")
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    for name in (f"{kid}.pem", STATE_FILE):
        assert stat.S_IMODE((keys_dir / name).stat().st_mode) == 0o600
    assert (keys_dir / f"{kid}.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE" not in (keys_dir / STATE_FILE).read_bytes()


def test_refusals(app, client, keys_dir):
    code, lines = run(app, "rotate")
    assert code != 0 and "keys create" in lines[-1]
    code, lines = run(app, "list")
    assert code == 0 and lines == ["no active key"]

    kid = ok(app, "create", "--alg", "ES384")
    code, lines = run(app, "create", "--alg", "ES384")
    assert code != 0 and "keys rotate" in lines[-1]
    code, lines = run(app, "retire", kid)
    assert code != 0 and "active key" in lines[-1]
    code, lines = run(app, "retire", "A" * 43)
    assert code != 0 and "no signing key" in lines[-1]
    for dashed in ("-" + "A" * 42, "--" + "A" * 41, "-h" + "A" * 41):  # kids may begin with "-"
        code, lines = run(app, "retire", dashed)
        assert code != 0 and lines[-1] == f"Error: no signing key {dashed!r}"
    code, lines = run(app, "create", "--alg", "HS256")
    assert code != 0

    newer = ok(app, "rotate", "--alg", "ES384")
    ok(app, "retire", kid)
    code, lines = run(app, "retire", kid)
    assert code != 0 and "already retired" in lines[-1]
    assert [k["kid"] for k in published(client)] == [newer]


@pytest.mark.parametrize(("alg", "check"), [("RS384", "rsa"), ("ES384", "ec")])
def test_signed_assertion_verifies_against_published_jwks(app, client, keys_dir, alg, check):
    ok(app, "create", "--alg", alg)
    kid, signer_alg, private_key = active_signer(app.config["HORIZON_SETTINGS"])
    assert signer_alg == alg
    if check == "rsa":
        assert isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size == 3072
    else:
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(private_key.curve, ec.SECP384R1)

    now = int(time.time())
    claims = {"iss": "c", "sub": "c", "aud": "https://ehr.example.org/token", "exp": now + 300, "jti": "j1"}
    token = jwt.encode(claims, private_key, algorithm=signer_alg, headers={"kid": kid})

    # Rotation keeps the old key published, so the assertion signed before it still verifies.
    ok(app, "rotate", "--alg", "ES384")
    jwks = {k["kid"]: k for k in published(client)}
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(jwks[header["kid"]], algorithm=header["alg"])
    decoded = jwt.decode(token, key.key, algorithms=[alg], audience="https://ehr.example.org/token")
    assert decoded["jti"] == "j1"
    assert active_signer(app.config["HORIZON_SETTINGS"])[0] != kid


def test_active_signer_refuses_missing_key_and_unsafe_file(app, keys_dir):
    settings = app.config["HORIZON_SETTINGS"]
    with pytest.raises(SigningKeyError, match="no active signing key"):
        active_signer(settings)
    kid = ok(app, "create", "--alg", "ES384")
    pem = keys_dir / f"{kid}.pem"
    os.chmod(pem, 0o640)
    with pytest.raises(SigningKeyError, match="readable by others"):
        active_signer(settings)
    os.chmod(pem, 0o600)
    assert active_signer(settings)[0] == kid


def test_key_material_is_never_logged(app, keys_dir, caplog):
    caplog.set_level(logging.DEBUG)
    kid = ok(app, "create", "--alg", "ES384")
    ok(app, "rotate", "--alg", "ES384")
    ok(app, "retire", kid)
    pem_text = "".join(p.read_text() for p in keys_dir.glob("*.pem"))
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert kid in logged
    assert "PRIVATE" not in logged and pem_text.splitlines()[1] not in logged


def test_thumbprint_matches_rfc_7638_example():
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
        "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMi"
        "cAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr"
        "3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_setting_comes_from_the_environment(tmp_path: Path):
    assert Settings.load(environ={}).signing_keys_dir == "var/keys"
    loaded = Settings.load(environ={"HORIZON_SIGNING_KEYS_DIR": str(tmp_path)})
    assert KeyStore.from_settings(loaded).directory == tmp_path
