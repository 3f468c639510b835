"""Client key sets: public RS384/ES384 keys with a kid only; JWKS URLs only from the allow-list."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from integration.auth.smart_keys import (
    MAX_JWKS_BYTES,
    JwksCache,
    JwksError,
    check_jwks_url,
    parse_allowlist,
    usable_keys,
    validate_jwks,
    verification_key,
)
from tests.auth.test_smart_support import JwksServer, ec_key, jwks_text, public_jwk, rsa_key


def test_valid_jwks_is_stored_compact():
    text = jwks_text(
        public_jwk(rsa_key(), "rsa-1"), public_jwk(ec_key(), "ec-1") | {"alg": "ES384", "use": "sig"}
    )
    stored = validate_jwks(text)
    assert [k["kid"] for k in json.loads(stored)["keys"]] == ["rsa-1", "ec-1"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: public_jwk(rsa_key(), "k") | {"d": "AAAA"}, "private key material"),
        (lambda: {"kty": "oct", "k": "c2VjcmV0", "kid": "k"}, "private key material"),
        (lambda: public_jwk(ec.generate_private_key(ec.SECP256R1()), "k"), "RSA and EC P-384"),
        (lambda: public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "k"), "2048"),
        (lambda: public_jwk(rsa_key(), None), "kid"),
        (lambda: public_jwk(rsa_key(), ""), "kid"),
        (lambda: public_jwk(rsa_key(), "k") | {"alg": "RS256"}, "alg must be RS384"),
        (lambda: public_jwk(rsa_key(), "k") | {"use": "enc"}, "use must be sig"),
        (lambda: public_jwk(rsa_key(), "k") | {"key_ops": ["encrypt"]}, "key_ops"),
        (lambda: public_jwk(rsa_key(), "k") | {"n": "AQAB"}, "cannot be loaded"),
        (lambda: "not an object", "JSON object"),
    ],
)
def test_bad_keys_are_refused(make, message):
    with pytest.raises(JwksError, match=message):
        validate_jwks(json.dumps({"keys": [make()]}))


@pytest.mark.parametrize("text", ["{", "[]", '{"keys": []}', '{"keys": {}}', '{"nokeys": 1}'])
def test_bad_documents_are_refused(text):
    with pytest.raises(JwksError):
        validate_jwks(text)


def test_duplicate_kids_are_refused():
    with pytest.raises(JwksError, match="share a kid"):
        validate_jwks(jwks_text(public_jwk(rsa_key(), "k"), public_jwk(ec_key(), "k")))


def test_published_sets_keep_only_usable_keys():
    document = {
        "keys": [
            public_jwk(rsa_key(), "rsa-1"),
            public_jwk(rsa_key(), "enc") | {"use": "enc"},
            public_jwk(ec.generate_private_key(ec.SECP256R1()), "p256"),
            public_jwk(ec_key(), "twice"),
            public_jwk(rsa_key(1), "twice"),  # an ambiguous kid verifies nothing
        ]
    }
    assert set(usable_keys(document)) == {"rsa-1"}
    with pytest.raises(JwksError, match="private"):
        usable_keys({"keys": [public_jwk(rsa_key(), "k") | {"d": "AAAA"}]})


def test_verification_key_must_suit_the_alg():
    keys = {"rsa-1": public_jwk(rsa_key(), "rsa-1"), "ec-1": public_jwk(ec_key(), "ec-1")}
    assert verification_key(keys, "rsa-1", "RS384") is not None
    assert verification_key(keys, "ec-1", "ES384") is not None
    assert verification_key(keys, "rsa-1", "ES384") is None
    assert verification_key(keys, "ec-1", "RS384") is None
    assert verification_key(keys, "missing", "RS384") is None
    assert verification_key(keys, "rsa-1", "HS256") is None


ALLOW = ["https://ehr.example.org/jwks", "http://127.0.0.1:9000/keys/", "https://whole.example.net"]


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/jwks",
        "https://ehr.example.org/jwks/client-1.json",
        "https://EHR.example.org/jwks/x?tenant=1",
        "http://127.0.0.1:9000/keys/a.json",
        "https://whole.example.net/anything/at/all",
    ],
)
def test_allowed_jwks_urls(url):
    check_jwks_url(url, ALLOW)


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/jwks-evil/x",  # a prefix ends at a path segment
        "https://ehr.example.org.evil.net/jwks/x",  # and at the host
        "https://ehr.example.org:8443/jwks/x",
        "http://ehr.example.org/jwks/x",  # https only
        "http://127.0.0.1:9001/keys/a.json",
        "http://127.0.0.1:9000/other/a.json",
        "https://user:pw@ehr.example.org/jwks/x",
        "https://ehr.example.org/jwks/x#frag",
        "file:///etc/passwd",
        "ftp://ehr.example.org/jwks/x",
        "https:///jwks/x",
        "",
    ],
)
def test_refused_jwks_urls(url):
    with pytest.raises(JwksError):
        check_jwks_url(url, ALLOW)


def test_empty_allow_list_refuses_every_url():
    assert parse_allowlist("") == []
    assert parse_allowlist(" https://a/x/ ,https://b/y/\n") == ["https://a/x/", "https://b/y/"]
    with pytest.raises(JwksError, match="allow-list"):
        check_jwks_url("https://ehr.example.org/jwks/x", [])


@pytest.fixture
def jwks_server():
    server = JwksServer()
    yield server
    server.close()


def test_cache_refetches_after_its_ttl(jwks_server):
    now = [1000.0]
    cache = JwksCache(ttl_seconds=60, clock=lambda: now[0])
    url = jwks_server.publish("/k.json", {"keys": [public_jwk(rsa_key(), "a")]})
    assert set(cache.keys(url)) == {"a"}
    jwks_server.publish("/k.json", {"keys": [public_jwk(rsa_key(), "b")]})
    now[0] += 59
    assert set(cache.keys(url)) == {"a"}
    now[0] += 2
    assert set(cache.keys(url)) == {"b"}
    assert len(jwks_server.hits) == 2


def test_failed_fetches_are_not_cached_and_large_sets_are_refused(jwks_server):
    cache = JwksCache(ttl_seconds=60)
    url = jwks_server.publish("/k.json", {}, status=503)
    with pytest.raises(JwksError, match="503"):
        cache.keys(url)
    jwks_server.publish("/k.json", b" " * (MAX_JWKS_BYTES + 1))
    with pytest.raises(JwksError, match="too large"):
        cache.keys(url)
    jwks_server.publish("/k.json", {"keys": [public_jwk(rsa_key(), "a")]})
    assert set(cache.keys(url)) == {"a"}
    with pytest.raises(JwksError, match="cannot be fetched"):
        JwksCache(60).keys("http://127.0.0.1:1/closed.json")


def test_an_unknown_kid_refetches_at_once_but_at_most_once_per_interval(jwks_server):
    now = [1000.0]
    cache = JwksCache(ttl_seconds=300, clock=lambda: now[0], refetch_seconds=30)
    url = jwks_server.publish("/k.json", {"keys": [public_jwk(rsa_key(), "a")]})
    assert set(cache.keys(url, "a")) == {"a"}
    jwks_server.publish("/k.json", {"keys": [public_jwk(rsa_key(), "b")]})  # the client rotated
    now[0] += 5
    assert set(cache.keys(url, "b")) == {"a"}  # fetched 5 s ago: a made-up kid costs no fetch
    now[0] += 30
    assert set(cache.keys(url, "b")) == {"b"}  # a new kid after the interval: fetched before expiry
    assert set(cache.keys(url, "zzz")) == {"b"}  # and not fetched again for another unknown kid
    assert len(jwks_server.hits) == 2
