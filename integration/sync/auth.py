"""Access tokens for destinations: none, a bearer token from the environment, or SMART Backend Services.

SMART: a client assertion JWT (RFC 7523) signed with the service's active signing key (its kid in the
header, published in our JWKS) or a per-destination key file, exchanged at the configured token URL
for an access token that is cached until shortly before it expires. Tokens are never logged.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives import serialization

from integration.auth.signing_keys import active_signer, public_jwk
from integration.settings import Settings
from integration.sync.destinations import AuthConfig

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300
EXPIRY_MARGIN = 30


class AuthError(Exception):
    """No token could be had (missing env var, refused by the token endpoint, unreachable)."""

    def __init__(self, message: str, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


class TokenSource:
    """Gives the Authorization header value (or None) and forgets a token the server refused."""

    def header(self) -> str | None:
        return None

    def invalidate(self) -> None:
        return None


class BearerFromEnv(TokenSource):
    def __init__(self, env_name: str, environ: Mapping[str, str] | None = None) -> None:
        self._name = env_name
        self._env = environ if environ is not None else os.environ

    def header(self) -> str:
        token = self._env.get(self._name, "")
        if not token:
            raise AuthError(f"environment variable {self._name} (the destination's bearer token) is not set")
        return f"Bearer {token}"


class SmartBackend(TokenSource):
    """client_credentials with a private_key_jwt assertion; one token cached per destination."""

    def __init__(
        self,
        config: AuthConfig,
        signer: Callable[[], tuple[str, str, object]],
        post: Callable[..., requests.Response],
        timeout: tuple[float, float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._signer = signer
        self._post = post
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def header(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires:
                self._fetch()
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def assertion(self) -> str:
        kid, alg, key = self._signer()
        now = int(self._clock())
        claims = {
            "iss": self._config.client_id,
            "sub": self._config.client_id,
            "aud": self._config.token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})  # type: ignore[arg-type]

    def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": self._config.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        try:
            response = self._post(
                self._config.token_url,
                data=form,
                timeout=self._timeout,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise AuthError(f"token endpoint unreachable ({type(exc).__name__})", temporary=True) from None
        if response.status_code != 200:
            temporary = response.status_code >= 500 or response.status_code in (408, 429)
            raise AuthError(f"token endpoint answered {response.status_code}", temporary=temporary)
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise AuthError("token endpoint answered without an access_token") from None
        if not isinstance(token, str) or not token:
            raise AuthError("token endpoint answered without an access_token")
        self._token = token
        self._expires = self._clock() + max(lifetime - EXPIRY_MARGIN, 1.0)


def key_file_signer(path: str, alg: str) -> Callable[[], tuple[str, str, object]]:
    """A signer from a per-destination PEM file (kid = its RFC 7638 thumbprint)."""

    def sign() -> tuple[str, str, object]:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        return public_jwk(key, alg)["kid"], alg, key  # type: ignore[arg-type]

    return sign


def token_source(
    config: AuthConfig, settings: Settings, session: requests.Session, timeout: tuple[float, float]
) -> TokenSource:
    if config.type == "bearer":
        return BearerFromEnv(config.token_env)
    if config.type == "smart-backend":
        if config.private_key_file:
            signer = key_file_signer(config.private_key_file, config.alg)
        else:

            def signer() -> tuple[str, str, object]:
                return active_signer(settings)

        return SmartBackend(config, signer, session.post, timeout)
    return TokenSource()
