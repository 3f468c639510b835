"""SMART client public keys: JWKS validation, the JWKS URL allow-list and a TTL cache of fetched sets.

Only keys that can verify RS384 or ES384 (RSA >= 2048 bits, EC P-384) with a `kid` are ever used, and
a key set carrying private key material is refused outright. JWKS URLs are fetched only when they
start with a configured prefix, over https (http only on loopback), without following redirects.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from integration.net import is_loopback

log = logging.getLogger(__name__)

# alg -> (kty, crv) of the keys that may verify it; SMART Backend Services section "Authenticating".
ALGORITHMS: dict[str, tuple[str, str | None]] = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT = (3.05, 5.0)  # connect, read (seconds)

Keys = dict[str, dict[str, Any]]  # kid -> public JWK


class JwksError(ValueError):
    """A key set, a key in it, or a JWKS URL cannot be used."""


def validate_key(jwk: Any) -> None:
    """Refuse a JWK that is not a public RS384/ES384 verification key with a kid."""
    if not isinstance(jwk, dict):
        raise JwksError("a key must be a JSON object")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise JwksError("the key set contains private key material; register public keys only")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid.strip() or len(kid) > 200:
        raise JwksError("every key needs a kid (a non-empty string)")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    alg = next((a for a, (t, c) in ALGORITHMS.items() if t == kty and c in (None, crv)), None)
    if alg is None:
        raise JwksError(f"key {kid!r}: only RSA and EC P-384 keys are accepted")
    if jwk.get("alg", alg) != alg:
        raise JwksError(f"key {kid!r}: alg must be {alg}")
    if jwk.get("use", "sig") != "sig":
        raise JwksError(f"key {kid!r}: use must be sig")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise JwksError(f"key {kid!r}: key_ops must include verify")
    try:
        key = PyJWK(jwk, algorithm=alg).key
    except (PyJWTError, ValueError, TypeError) as exc:
        raise JwksError(f"key {kid!r} cannot be loaded: {exc}") from None
    if kty == "RSA" and key.key_size < MIN_RSA_BITS:
        raise JwksError(f"key {kid!r}: RSA keys must have at least {MIN_RSA_BITS} bits")


def validate_jwks(text: str) -> str:
    """Check a JWKS document strictly (every key must pass) and return it as compact JSON to store."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise JwksError("the JWKS is not valid JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise JwksError('the JWKS must be an object with a non-empty "keys" list')
    for jwk in keys:
        validate_key(jwk)
    kids = [jwk["kid"] for jwk in keys]
    if len(set(kids)) != len(kids):
        raise JwksError("two keys share a kid")
    return orjson.dumps({"keys": keys}).decode()


def usable_keys(document: Any) -> Keys:
    """The verification keys of a fetched JWKS by kid; keys this server cannot use are skipped.

    A set someone else publishes may hold encryption or other-algorithm keys beside the signing key,
    so unusable keys are skipped, not fatal; a set with private key material is refused whole.
    """
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksError('the JWKS has no "keys" list')
    usable: Keys = {}
    for jwk in keys:
        if isinstance(jwk, dict) and _PRIVATE_MEMBERS & jwk.keys():
            raise JwksError("the published JWKS contains private key material")
        try:
            validate_key(jwk)
        except JwksError:
            continue
        if jwk["kid"] in usable:  # an ambiguous kid verifies nothing
            usable[jwk["kid"]] = {}
        else:
            usable[jwk["kid"]] = jwk
    return {kid: jwk for kid, jwk in usable.items() if jwk}


def stored_keys(jwks: str) -> Keys:
    return {jwk["kid"]: jwk for jwk in orjson.loads(jwks)["keys"]}


def verification_key(keys: Keys, kid: str, alg: str) -> Any | None:
    """The public key `kid` names, if it exists and suits `alg`; else None."""
    jwk = keys.get(kid)
    if jwk is None or alg not in ALGORITHMS:
        return None
    kty, crv = ALGORITHMS[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv) or jwk.get("alg", alg) != alg:
        return None
    return PyJWK(jwk, algorithm=alg).key


def parse_allowlist(setting: str) -> list[str]:
    return [prefix.strip() for prefix in setting.replace("\n", ",").split(",") if prefix.strip()]


def check_jwks_url(url: str, allowlist: list[str]) -> None:
    """Refuse a JWKS URL that is not https (http on loopback) or not under an allow-listed prefix."""
    target = urlsplit(url)
    loopback = is_loopback(target.hostname)
    if target.scheme != "https" and not (target.scheme == "http" and loopback):
        raise JwksError("a JWKS URL must use https (http only on a loopback address)")
    if target.username or target.password or target.fragment or not target.hostname:
        raise JwksError("a JWKS URL must name a host and carry no credentials or fragment")
    for prefix in allowlist:
        allowed = urlsplit(prefix)
        if (allowed.scheme, allowed.netloc.lower()) != (target.scheme, target.netloc.lower()):
            continue
        base = allowed.path
        if not base or target.path == base or target.path.startswith(base.rstrip("/") + "/"):
            return
    raise JwksError("the JWKS URL is not on the allow-list (setting smart_jwks_url_allowlist)")


class JwksCache:
    """Fetched key sets by URL, each reused for `ttl_seconds`; a failed fetch is never cached.

    A kid missing from a cached set means the client rotated its keys: the set is fetched again at
    once, but at most once per `refetch_seconds` per URL, so assertions naming made-up kids cannot
    turn this server into a load generator against the client's JWKS host.
    """

    def __init__(
        self, ttl_seconds: int, clock: Callable[[], float] = time.monotonic, refetch_seconds: float = 30.0
    ) -> None:
        self._ttl = ttl_seconds
        self._refetch = refetch_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, float, Keys]] = {}  # url -> (fetched at, expires at, keys)

    def keys(self, url: str, kid: str | None = None) -> Keys:
        now = self._clock()
        with self._lock:
            cached = self._entries.get(url)
        if cached is not None and cached[1] > now:
            fetched_at, _, keys = cached
            if kid is None or kid in keys or now - fetched_at < self._refetch:
                return keys
        keys = fetch_jwks(url)
        with self._lock:
            self._entries[url] = (now, now + self._ttl, keys)
        return keys


def fetch_jwks(url: str) -> Keys:
    """GET a JWKS without redirects, with a timeout and a size cap; JwksError on any failure."""
    try:
        with requests.get(
            url,
            timeout=FETCH_TIMEOUT,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/json, application/jwk-set+json"},
        ) as response:
            if response.status_code != 200:
                raise JwksError(f"the JWKS URL answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_content(8192):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError("the JWKS is too large")
    except requests.RequestException as exc:
        log.warning("JWKS fetch failed", extra={"error": type(exc).__name__})
        raise JwksError("the JWKS URL cannot be fetched") from None
    try:
        return usable_keys(orjson.loads(bytes(body)))
    except orjson.JSONDecodeError:
        raise JwksError("the JWKS URL did not return JSON") from None
