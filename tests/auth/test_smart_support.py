"""Helpers shared by the SMART tests: keys made once per run, signed assertions, registration (no tests)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from integration.auth.smart import require_scope
from integration.auth.smart_clients import SmartClientRepository
from integration.store.audit import AuditRepository

TOKEN_URL = "http://127.0.0.1:8000/auth/token"  # from the default public_base_url
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DROP = object()  # a claim or header given this value is left out


@functools.cache
def rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key(n: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(private_key, kid: str | None) -> dict:
    public = private_key.public_key()
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(public))
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def jwks_text(*keys: dict) -> str:
    return json.dumps({"keys": list(keys)})


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims_for(client_id: str, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 240, "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


def sign(claims: dict, key, *, alg: str = "RS384", kid: object = "rsa-1", **headers) -> str:
    header = {"kid": kid, "typ": "JWT", **headers}
    header = {k: v for k, v in header.items() if v is not DROP}
    return jwt.encode(claims, None if alg == "none" else key, algorithm=alg, headers=header)


def assertion(client_id: str, *, key=None, alg: str = "RS384", kid: object = "rsa-1", **claims) -> str:
    return sign(claims_for(client_id, **claims), key or rsa_key(), alg=alg, kid=kid)


def forge_hs256(claims: dict, secret: bytes, kid: str = "rsa-1") -> str:
    """An HS256 token whose HMAC secret is the client's public key: the classic key-confusion attack."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}))
    body = b64(orjson.dumps(claims))
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def form(client_assertion: str, /, scope: str | None = "system/*.rs", **overrides) -> dict:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        "scope": scope,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None and v is not DROP}


def register(db, name: str = "st-marys-ehr", scope: str = "system/*.rs", **options) -> str:
    """Register a client with the default RSA (kid rsa-1) and EC (kid ec-1) keys unless told otherwise."""
    if "jwks" not in options and "jwks_url" not in options:
        options["jwks"] = jwks_text(public_jwk(rsa_key(), "rsa-1"), public_jwk(ec_key(), "ec-1"))
    with db.writer() as conn:
        return SmartClientRepository(conn).register(name, scope, **options)


def revoke(db, client_id: str) -> None:
    with db.writer() as conn:
        assert SmartClientRepository(conn).revoke(client_id)


def audit_rows(db, action: str = "smart.token") -> list[dict]:
    with db.reader() as conn:
        rows = AuditRepository(conn).recent(1000)
    return [r for r in reversed(rows) if r["action"] == action]


def reason(row: dict) -> str | None:
    return orjson.loads(row["detail"])["reason"] if row["detail"] else None


def add_probe(app) -> None:
    """A stand-in for the FHIR API (built later): one route that asks require_scope and shows the grant."""

    def probe(resource_type: str, interaction: str) -> dict:
        grant = require_scope(resource_type, interaction)
        return {"client_id": grant.client_id, "scope": grant.scope, "group_id": grant.group_id}

    app.add_url_rule("/probe/<resource_type>/<interaction>", view_func=probe)


class JwksServer:
    """A real HTTP server on 127.0.0.1 publishing key sets: routes maps path -> (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def publish(self, path: str, document: object, status: int = 200, headers: dict | None = None) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.routes[path] = (status, headers or {}, body)
        return self.base + path

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
