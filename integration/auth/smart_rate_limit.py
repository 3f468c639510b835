"""Rate limits of the SMART token endpoint: per client, and per remote address for refused requests.

A client whose assertion verified may ask `smart_token_rate_per_client` times a window. A remote
address may be refused `smart_token_refusals_per_address` times a window; after that every request
from it is answered 429 before its assertion is read, so guessing client ids, keys or assertions
gets slow (a limit per claimed client id would let anyone lock a real client out by sending bad
assertions in its name). Counted in the database (store/rate_limits.py): all workers share them.

The answer: HTTP 429 (RFC 6585 section 4) with Retry-After, and an RFC 6749 section 5.2 body with
error `invalid_request`. RFC 6749 has no throttling code. `invalid_client` would tell the client its
credentials are wrong (it might discard a good key or page someone), and `slow_down` is registered
for polling in the device grant (RFC 8628 section 3.5), where it means "authorization pending".
`invalid_request` means "this request, as sent, is not served", which is true; the status and
Retry-After say why and when to come back, and error_description says it in words.
"""

from __future__ import annotations

import logging

from integration.auth.smart_assertion import TokenRefusal
from integration.settings import Settings
from integration.store.db import Database
from integration.store.rate_limits import Count, RateCounters

log = logging.getLogger(__name__)


class TokenRateLimits:
    """The token endpoint's two limits for one request, read from the settings."""

    def __init__(self, db: Database, settings: Settings, now: float) -> None:
        self._db = db
        self._window = max(1, settings.smart_token_rate_window_seconds)
        self._per_client = settings.smart_token_rate_per_client
        self._per_address = settings.smart_token_refusals_per_address
        self._now = now

    def check_address(self, address: str | None) -> None:
        """Refuse at once (429) an address that was refused too often in this window."""
        if self._per_address <= 0:
            return
        with self._db.reader() as conn:
            count = RateCounters(conn).peek(_address_bucket(address), self._window, self._now)
        if count.hits >= self._per_address:
            raise _throttled("rate_limited_address", count, None)

    def count_refusal(self, address: str | None) -> None:
        """Count one refused request against its address."""
        if self._per_address <= 0:
            return
        with self._db.writer() as conn:
            count = RateCounters(conn).hit(_address_bucket(address), self._window, self._now)
        if count.hits == self._per_address:
            log.warning("token endpoint: remote address %s reached its refusal limit", address)

    def count_client(self, client_id: str) -> None:
        """Count one request of a verified client; refuse it (429) beyond the client's limit."""
        if self._per_client <= 0:
            return
        with self._db.writer() as conn:
            count = RateCounters(conn).hit(f"smart-token-client:{client_id}", self._window, self._now)
        if count.hits > self._per_client:
            if count.hits == self._per_client + 1:
                log.warning("token endpoint: client %s reached its rate limit", client_id)
            raise _throttled("rate_limited_client", count, client_id)


def _address_bucket(address: str | None) -> str:
    return f"smart-token-refusals:{address or 'unknown'}"


def _throttled(reason: str, count: Count, client_id: str | None) -> TokenRefusal:
    return TokenRefusal(
        "invalid_request",
        reason,
        f"too many token requests; retry after {count.window_ends_in} seconds",
        client_id,
        status=429,
        headers={"Retry-After": str(count.window_ends_in)},
    )
