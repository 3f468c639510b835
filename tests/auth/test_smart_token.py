"""The SMART token endpoint over the Flask client: issuance, every refusal, and the audit row of each."""

import base64
import logging
import time

import orjson
import pytest
from sqlalchemy import select

from integration.auth.smart_clients import digest
from integration.store.schema import audit_event, smart_access_token
from tests.auth.test_smart_support import (
    DROP,
    TOKEN_URL,
    assertion,
    audit_rows,
    claims_for,
    ec_key,
    forge_hs256,
    form,
    public_pem,
    reason,
    register,
    revoke,
    rsa_key,
    sign,
)


@pytest.fixture
def client_id(db):
    return register(db)


def post(client, data, **kwargs):
    return client.post("/auth/token", data=data, **kwargs)


def test_discovery_names_the_configured_token_url(client):
    response = client.get("/.well-known/smart-configuration", headers={"Host": "evil.example"})
    body = response.json
    assert body["token_endpoint"] == TOKEN_URL
    assert body["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert body["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert body["grant_types_supported"] == ["client_credentials"]
    assert "system/*.rs" in body["scopes_supported"]
    assert set(body["capabilities"]) == {"client-confidential-asymmetric", "permission-v2", "permission-v1"}


@pytest.mark.parametrize(("alg", "kid", "key"), [("RS384", "rsa-1", rsa_key), ("ES384", "ec-1", ec_key)])
def test_valid_assertion_gets_a_short_lived_opaque_token(client, db, client_id, alg, kid, key):
    signed = assertion(client_id, key=key(), alg=alg, kid=kid)
    response = post(client, form(signed, scope="system/Observation.rs system/Patient.rs"))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/Observation.rs system/Patient.rs"
    assert response.headers["Cache-Control"] == "no-store"
    token = body["access_token"]
    with db.reader() as conn:
        rows = conn.execute(select(smart_access_token)).all()
    assert [r.token_hash for r in rows] == [digest(token)]
    assert token not in str([tuple(r) for r in rows])
    (row,) = audit_rows(db)
    assert (row["actor"], row["outcome"], reason(row)) == (client_id, 200, "issued")


# Reasons found before the assertion names a registered client: the audit row has no actor.
ANONYMOUS = {
    "bad_alg",
    "bad_header",
    "missing_kid",
    "iss_sub_mismatch",
    "unknown_client",
    "malformed_assertion",
    "bad_grant_type",
    "missing_grant_type",
    "bad_assertion_type",
    "missing_assertion",
    "scope_too_long",
}


def _case(name, status, error, reason_code, **kw):
    return (name, status, error, reason_code, kw)


UNKNOWN_ID = "5f0f4c1e-0000-4000-8000-000000000000"
# Every refusal of the token endpoint: (name, HTTP status, RFC 6749 error, audit reason, how to build it).
CASES = [
    # alg: only RS384 / ES384, never none, never HS* (not even with the public key as the secret)
    _case("alg-none", 401, "invalid_client", "bad_alg", alg="none"),
    _case("alg-hs256-public-key", 401, "invalid_client", "bad_alg", forge="hs256"),
    _case("alg-rs256", 401, "invalid_client", "bad_alg", alg="RS256"),
    _case("alg-not-string", 401, "invalid_client", "bad_alg", forge="alg-list"),
    _case("alg-es384-with-rsa-kid", 401, "invalid_client", "unknown_kid", alg="ES384", key="ec", kid="rsa-1"),
    _case("kid-missing", 401, "invalid_client", "missing_kid", kid=DROP),
    _case("kid-unknown", 401, "invalid_client", "unknown_kid", kid="other"),
    _case("signature-other-key", 401, "invalid_client", "bad_signature", key="rsa-other"),
    _case("signature-tampered", 401, "invalid_client", "bad_signature", tamper=True),
    _case("iss-not-sub", 401, "invalid_client", "iss_sub_mismatch", claims={"sub": "someone-else"}),
    _case("iss-missing", 401, "invalid_client", "iss_sub_mismatch", claims={"iss": DROP}),
    _case("client-unknown", 401, "invalid_client", "unknown_client", client="unknown"),
    _case("client-revoked", 401, "invalid_client", "revoked_client", client="revoked"),
    _case("aud-wrong", 401, "invalid_client", "wrong_aud", claims={"aud": "http://127.0.0.1:8000/token"}),
    _case("aud-from-host", 401, "invalid_client", "wrong_aud", claims={"aud": "http://localhost/auth/token"}),
    _case("aud-missing", 401, "invalid_client", "missing_aud", claims={"aud": DROP}),
    _case("exp-missing", 401, "invalid_client", "missing_exp", claims={"exp": DROP}),
    _case("exp-past", 401, "invalid_client", "expired", claims={"exp": lambda now: now - 120}),
    _case("exp-too-far", 401, "invalid_client", "exp_too_far", claims={"exp": lambda now: now + 600}),
    _case("exp-not-number", 401, "invalid_client", "invalid_assertion", claims={"exp": "soon"}),
    _case("nbf-future", 401, "invalid_client", "immature", claims={"nbf": lambda now: now + 120}),
    _case("jti-missing", 401, "invalid_client", "missing_jti", claims={"jti": DROP}),
    _case("jti-empty", 401, "invalid_client", "missing_jti", claims={"jti": ""}),
    _case("assertion-malformed", 401, "invalid_client", "malformed_assertion", raw="not.a.jwt"),
    _case("crit-header", 401, "invalid_client", "malformed_assertion", headers={"crit": ["exp"]}),
    _case("typ-not-jwt", 401, "invalid_client", "bad_header", headers={"typ": "at+jwt"}),
    _case("typ-not-string", 401, "invalid_client", "bad_header", headers={"typ": 7}),
    _case("iss-with-nul", 401, "invalid_client", "unknown_client", claims={"iss": "a\x00b", "sub": "a\x00b"}),
    _case("iss-not-string", 401, "invalid_client", "iss_sub_mismatch", unsigned_claims={"iss": 7, "sub": 7}),
    # the request itself
    _case("grant-type-wrong", 400, "unsupported_grant_type", "bad_grant_type", data={"grant_type": "x"}),
    _case("grant-type-missing", 400, "invalid_request", "missing_grant_type", data={"grant_type": DROP}),
    _case(
        "assertion-type-bad",
        400,
        "invalid_request",
        "bad_assertion_type",
        data={"client_assertion_type": "jwt"},
    ),
    _case("assertion-missing", 400, "invalid_request", "missing_assertion", data={"client_assertion": DROP}),
    _case("client-id-mismatch", 401, "invalid_client", "client_id_mismatch", data={"client_id": "other"}),
    _case("scope-missing", 400, "invalid_scope", "missing_scope", data={"scope": DROP}),
    _case("scope-too-long", 400, "invalid_request", "scope_too_long", data={"scope": "system/*.rs " * 400}),
    _case("scope-wider", 400, "invalid_scope", "scope_not_granted", data={"scope": "system/*.cud"}),
    _case("scope-v1-write", 400, "invalid_scope", "scope_not_granted", data={"scope": "system/*.write"}),
    _case("scope-patient", 400, "invalid_scope", "scope_not_granted", data={"scope": "patient/*.rs"}),
]


def _b64(document) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).rstrip(b"=").decode()


def _build(kw, client_id, revoked_id):
    who = {"unknown": UNKNOWN_ID, "revoked": revoked_id}.get(kw.get("client"), client_id)
    key = {"ec": ec_key(), "rsa-other": rsa_key(1)}.get(kw.get("key"), rsa_key())
    # Times are taken when the case is built, not at import: a long suite must not age them.
    now = int(time.time())
    given = {k: v(now) if callable(v) else v for k, v in kw.get("claims", {}).items()}
    claims = claims_for(who, **given)
    if kw.get("forge") == "hs256":
        return who, forge_hs256(claims, public_pem(rsa_key()))
    if kw.get("forge") == "alg-list":
        head, body, sig = sign(claims, key).split(".")
        return who, ".".join([_b64({"alg": ["RS384"], "kid": "rsa-1"}), body, sig])
    if "raw" in kw:
        return who, kw["raw"]
    headers = kw.get("headers", {})
    signed = sign(claims, key, alg=kw.get("alg", "RS384"), kid=kw.get("kid", "rsa-1"), **headers)
    if kw.get("tamper"):  # a validly encoded payload that is not the one signed
        head, _, sig = signed.split(".")
        signed = f"{head}.{_b64({**claims, 'jti': 'changed'})}.{sig}"
    if "unsigned_claims" in kw:  # claims PyJWT would refuse to sign
        head, _, sig = signed.split(".")
        signed = f"{head}.{_b64({**claims, **kw['unsigned_claims']})}.{sig}"
    return who, signed


def test_every_refusal_is_rfc6749_json_and_audited(client, db, client_id):
    """One test runs the whole table (per-test database setup would cost more than the cases)."""
    revoked_id = register(db, name="revoked-ehr")
    revoke(db, revoked_id)
    problems, sent = [], []
    for name, status, error, reason_code, kw in CASES:
        who, signed = _build(kw, client_id, revoked_id)
        sent.append(signed)
        # Each case from its own address: one address is throttled after a few refusals (tested below).
        address = {"REMOTE_ADDR": f"10.9.{len(sent) // 250}.{len(sent) % 250}"}
        response = post(client, form(signed, **kw.get("data", {})), environ_base=address)
        body = response.json
        row = audit_rows(db)[-1]
        expected_actor = None if reason_code in ANONYMOUS else who
        got = (response.status_code, body.get("error"), row["outcome"], reason(row), row["actor"])
        if got != (status, error, status, reason_code, expected_actor):
            problems.append(f"{name}: got {got}")
        if not body.get("error_description") or "access_token" in body:
            problems.append(f"{name}: body {body}")
        if response.headers["Cache-Control"] != "no-store":
            problems.append(f"{name}: cacheable")
    assert problems == []
    assert len(audit_rows(db)) == len(CASES)
    with db.reader() as conn:
        stored = str([tuple(r) for r in conn.execute(select(audit_event))])
        assert conn.execute(select(smart_access_token)).all() == []
    assert not [s for s in sent if s in stored]


def test_unknown_revoked_bad_key_and_bad_signature_read_alike(client, db, client_id):
    """Registry-dependent failures share one description, so ids and kids cannot be probed."""
    other = register(db, name="other-ehr")
    revoke(db, other)
    answers = [
        post(client, form(assertion("00000000-0000-4000-8000-000000000000"))).json,
        post(client, form(assertion(other))).json,
        post(client, form(assertion(client_id, kid="nope"))).json,
        post(client, form(assertion(client_id, key=rsa_key(1)))).json,
    ]
    assert all(a == answers[0] for a in answers)


def test_replayed_jti_is_refused(client, db, client_id):
    signed = assertion(client_id, jti="once-only")
    assert post(client, form(signed)).status_code == 200
    again = post(client, form(signed))
    assert again.status_code == 401 and again.json["error"] == "invalid_client"
    fresh_signature_same_jti = assertion(client_id, jti="once-only")
    assert post(client, form(fresh_signature_same_jti)).status_code == 401
    assert [reason(r) for r in audit_rows(db)] == ["issued", "replayed_jti", "replayed_jti"]
    # Another client may use the same jti: uniqueness is per issuer (RFC 7519 section 4.1.7).
    second = register(db, name="second-ehr")
    assert post(client, form(assertion(second, jti="once-only"))).status_code == 200


@pytest.mark.parametrize(
    ("registered", "requested", "granted"),
    [
        ("system/*.rs", "system/Observation.rs", "system/Observation.rs"),
        ("system/*.rs", "system/Observation.read", "system/Observation.read"),
        ("system/*.rs", "system/*.read", "system/*.read"),
        ("system/*.rs", "system/*.cruds", "system/*.rs"),
        ("system/*.rs", "system/*.*", "system/*.read"),
        ("system/Observation.rs system/Patient.r", "system/*.rs", "system/Observation.rs system/Patient.r"),
        ("system/Observation.read", "system/*.read launch openid", "system/Observation.read"),
        ("system/Observation.rs", "system/Observation.s system/Patient.rs", "system/Observation.s"),
    ],
)
def test_granted_scope_is_the_intersection(client, db, registered, requested, granted):
    client_id = register(db, scope=registered)
    response = post(client, form(assertion(client_id), scope=requested))
    assert response.status_code == 200, response.json
    assert response.json["scope"] == granted


def test_bad_transport_is_invalid_request(client, db, client_id):
    data = form(assertion(client_id))
    as_json = client.post("/auth/token", json=data)
    assert (as_json.status_code, as_json.json["error"]) == (400, "invalid_request")
    in_query = client.post("/auth/token", query_string={"client_assertion": "x"}, data=data)
    assert (in_query.status_code, in_query.json["error"]) == (400, "invalid_request")
    body = "&".join(f"{k}={v}" for k, v in data.items()) + "&scope=system/*.r"
    twice = client.post("/auth/token", data=body, content_type="application/x-www-form-urlencoded")
    assert (twice.status_code, twice.json["error"]) == (400, "invalid_request")
    assert [reason(r) for r in audit_rows(db)] == [
        "bad_content_type",
        "query_parameters",
        "duplicate_parameter",
    ]


def test_assertions_and_tokens_never_reach_the_logs(client, db, client_id, caplog):
    caplog.set_level(logging.DEBUG)
    good = assertion(client_id)
    token = post(client, form(good)).json["access_token"]
    bad = assertion(client_id, aud="http://elsewhere/auth/token")
    post(client, form(bad))
    client.get("/.well-known/smart-configuration", headers={"Authorization": f"Bearer {token}"})
    for secret in (good, bad, token):
        assert secret not in caplog.text
