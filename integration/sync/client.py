"""The HTTP client of one destination: its origin only, TLS verified, no redirects, token refresh on 401.

Every request goes to a path under the destination's base URL; anything else is refused before a
byte is sent. A 401 gets one fresh token and one replay. Nothing here logs URLs, bodies or tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from integration.settings import Settings
from integration.sync.auth import AuthError, TokenSource, token_source
from integration.sync.destinations import Destination, origin_of

FHIR_JSON = "application/fhir+json"


class TransportError(Exception):
    """The request got no HTTP answer (connection refused or reset, timeout, TLS failure)."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, reduced to what delivery needs."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object | None:
        import orjson

        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None


class FhirClient:
    def __init__(
        self,
        destination: Destination,
        settings: Settings,
        session: requests.Session | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.destination = destination
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxy or netrc from the environment
        self.timeout = (destination.connect_timeout, destination.read_timeout)
        self.tokens = tokens or token_source(destination.auth, settings, self.session, self.timeout)

    def url(self, path: str) -> str:
        """The absolute URL of a path relative to the base URL; refuses anything outside it."""
        if "://" in path or path.startswith("//") or ".." in path.split("?")[0].split("/"):
            raise ValueError("a destination request path must be relative to its base URL")
        url = f"{self.destination.base_url}/{path.lstrip('/')}" if path else self.destination.base_url
        if origin_of(url) != self.destination.origin or urlsplit(url).fragment:
            raise ValueError("refusing to send to an origin other than the destination's")
        return url

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = FHIR_JSON,
        accept: str = FHIR_JSON,
        extra: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; a 401 refreshes the token once and replays. Raises TransportError, AuthError."""
        url = self.url(path)
        answer = self._send(method, url, body, content_type, accept, extra)
        if answer.status == 401 and self.destination.auth.type != "none":
            self.tokens.invalidate()
            answer = self._send(method, url, body, content_type, accept, extra)
        return answer

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        content_type: str,
        accept: str,
        extra: Mapping[str, str] | None,
    ) -> Answer:
        headers = {**self.destination.headers, **(extra or {}), "Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        authorization = self.tokens.header()
        if authorization:
            headers["Authorization"] = authorization
        try:
            response = self.session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                verify=True,
            )
            content = response.content
        except requests.RequestException as exc:
            raise TransportError(type(exc).__name__) from None
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content)

    def close(self) -> None:
        self.session.close()


__all__ = ["Answer", "AuthError", "FhirClient", "TransportError"]
