"""The private keys this service signs its own SMART client assertions with, and the JWKS publishing them.

EHRs such as Epic verify our client assertions against a hosted JWKS URL (issue 5, "Our own JWKS").
Private keys are secrets: one PEM file (0600) per key in `signing_keys_dir` (0700), never in the
database, never logged. A JSON state file beside them records each key's kid (RFC 7638 thumbprint), alg,
created time, state and public JWK: `active` signs (exactly one), `published` stays in the JWKS so
assertions signed before a rotation keep verifying, `retired` leaves the JWKS and its file is removed.
Every write is atomic (temp file + os.replace) and mutations hold an exclusive lock on the directory.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Blueprint, Response, current_app, jsonify
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from integration.auth.smart_keys import ALGORITHMS, validate_key
from integration.settings import Settings

log = logging.getLogger(__name__)
bp = Blueprint("signing_keys", __name__)

STATE_FILE = "keys.json"
LOCK_FILE = ".lock"
RSA_BITS = 3072
STATES = ("active", "published", "retired")
JWKS_MAX_AGE_SECONDS = 300
_KID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest, unpadded
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}
_PUBLIC_MEMBERS = ("kty", "kid", "alg", "use", "key_ops", "n", "e", "crv", "x", "y")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SigningKeyError(ValueError):
    """A key operation cannot be done as asked (no active key, unknown kid, unsafe file, ...)."""


@dataclass(frozen=True)
class SigningKey:
    """One key's entry in the state file (public information only)."""

    kid: str
    alg: str
    created: str
    state: str
    jwk: dict[str, Any]


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members, sorted, no whitespace; base64url."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def public_jwk(private_key: PrivateKey, alg: str) -> dict[str, Any]:
    """The public JWK of a private key, with kid = its thumbprint, alg, use sig and key_ops verify."""
    algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    raw = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk = {k: raw[k] for k in _THUMBPRINT_MEMBERS[raw["kty"]]}
    jwk.update(kid=thumbprint(jwk), alg=alg, use="sig", key_ops=["verify"])
    return jwk


def generate(alg: str) -> PrivateKey:
    if alg not in ALGORITHMS:
        raise SigningKeyError(f"alg must be one of {', '.join(ALGORITHMS)}")
    if alg == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP384R1())


class KeyStore:
    """The key directory: its state file and one PEM file per key that is not retired."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        return cls(settings.signing_keys_dir)

    # --- reading -------------------------------------------------------------------------------
    def keys(self) -> list[SigningKey]:
        """Every key the state file records, oldest first; empty when there is no directory yet."""
        path = self.directory / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise SigningKeyError(f"{path} is not valid JSON: {exc}") from None
        keys = [SigningKey(**entry) for entry in data.get("keys", [])]
        for key in keys:
            if not _KID.match(key.kid) or key.state not in STATES or key.alg not in ALGORITHMS:
                raise SigningKeyError(f"{path}: malformed entry {key.kid!r}")
        return keys

    def active(self) -> SigningKey | None:
        return next((k for k in self.keys() if k.state == "active"), None)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public key set: active and published keys, public members only (never private ones)."""
        published = [k for k in self.keys() if k.state in ("active", "published")]
        return {"keys": [{m: k.jwk[m] for m in _PUBLIC_MEMBERS if m in k.jwk} for k in published]}

    def private_key(self, key: SigningKey) -> PrivateKey:
        """Load a key's PEM file, refusing one that others may read or that does not match its kid."""
        path = self._pem_path(key.kid)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise SigningKeyError(f"the private key file of {key.kid} is missing") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningKeyError(f"{path} is readable by others; chmod 600 it")
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SigningKeyError(f"{path} is not an RSA or EC private key")
        if public_jwk(loaded, key.alg)["kid"] != key.kid:
            raise SigningKeyError(f"{path} does not hold the key {key.kid}")
        return loaded

    # --- changing ------------------------------------------------------------------------------
    def create(self, alg: str) -> SigningKey:
        """Make the first key, active at once; refused when an active key exists (rotate instead)."""
        with self._locked():
            keys = self.keys()
            if any(k.state == "active" for k in keys):
                raise SigningKeyError("an active signing key exists; use `keys rotate` to replace it")
            return self._add(keys, alg)

    def rotate(self, alg: str) -> SigningKey:
        """Make a new active key; the previous active key stays published until it is retired."""
        with self._locked():
            keys = self.keys()
            if not any(k.state == "active" for k in keys):
                raise SigningKeyError("there is no active signing key; use `keys create` first")
            keys = [_with_state(k, "published") if k.state == "active" else k for k in keys]
            return self._add(keys, alg)

    def retire(self, kid: str) -> SigningKey:
        """Drop a published key from the JWKS and delete its private key file; never the active key."""
        with self._locked():
            keys = self.keys()
            key = next((k for k in keys if k.kid == kid), None)
            if key is None:
                raise SigningKeyError(f"no signing key {kid!r}")
            if key.state == "active":
                raise SigningKeyError(f"{kid} is the active key; rotate first, then retire it")
            if key.state == "retired":
                raise SigningKeyError(f"{kid} is already retired")
            retired = _with_state(key, "retired")
            self._write_state([retired if k.kid == kid else k for k in keys])
            self._pem_path(kid).unlink(missing_ok=True)
            _fsync_dir(self.directory)
        log.info("signing key retired", extra={"kid": kid})
        return retired

    # --- internals -----------------------------------------------------------------------------
    def _add(self, keys: list[SigningKey], alg: str) -> SigningKey:
        private_key = generate(alg)
        jwk = public_jwk(private_key, alg)
        validate_key(jwk)  # the same checks we apply to the keys EHRs register with us
        created = datetime.now(UTC).replace(microsecond=0).isoformat()
        key = SigningKey(kid=jwk["kid"], alg=alg, created=created, state="active", jwk=jwk)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _atomic_write(self._pem_path(key.kid), pem)  # the key file first: a crash leaves no dangling kid
        self._write_state([*keys, key])
        log.info("signing key created", extra={"kid": key.kid, "alg": alg})
        return key

    def _write_state(self, keys: list[SigningKey]) -> None:
        entries = [
            {"kid": k.kid, "alg": k.alg, "created": k.created, "state": k.state, "jwk": k.jwk} for k in keys
        ]
        text = json.dumps({"keys": entries}, indent=2) + "\n"
        _atomic_write(self.directory / STATE_FILE, text.encode())

    def _pem_path(self, kid: str) -> Path:
        if not _KID.match(kid):
            raise SigningKeyError(f"not a key id: {kid!r}")
        return self.directory / f"{kid}.pem"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _with_state(key: SigningKey, state: str) -> SigningKey:
    return SigningKey(kid=key.kid, alg=key.alg, created=key.created, state=state, jwk=key.jwk)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write a 0600 file under a temporary name, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crashed run with the same pid; we hold the lock
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def active_signer(settings: Settings) -> tuple[str, str, PrivateKey]:
    """(kid, alg, private key) to sign our client assertions with; put the kid in the JWT header."""
    store = KeyStore.from_settings(settings)
    key = store.active()
    if key is None:
        raise SigningKeyError("no active signing key; run `flask --app wsgi keys create`")
    return key.kid, key.alg, store.private_key(key)


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    """The public keys EHRs verify our client assertions with (active and published keys)."""
    response = jsonify(KeyStore.from_settings(current_app.config["HORIZON_SETTINGS"]).jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return response
