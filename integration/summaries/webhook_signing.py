"""HMAC-SHA256 signatures of webhook deliveries, and the check a receiver runs (Stripe's scheme, our names).

The scheme (documented for receivers in the README):

    X-Horizon-Timestamp: <unix seconds when the request was signed>
    X-Horizon-Signature: v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>

The key is the UTF-8 bytes of the secret held in the env var the referrer's `secret_env` names. During a
secret rotation the header may carry several `v1=` values separated by commas; one match is enough. A
receiver recomputes the HMAC over the raw body exactly as received, compares in constant time and refuses a
timestamp more than the tolerance (default 5 minutes) away from its clock, which bounds replays. Signing
happens when the request is sent (not when it is prepared), so a retry carries a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Horizon-Timestamp"
SIGNATURE_HEADER = "X-Horizon-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The request's signature does not verify; the message says which check failed (never the secret)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>`."""
    if not secret:
        raise ValueError("an empty webhook secret signs nothing")
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    """The two headers to send with `body`, signed at `now` (unix seconds)."""
    timestamp = int(now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={signature(secret, timestamp, body)}",
    }


def verify(
    secrets: list[str] | str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a received request; returns its timestamp, or raises SignatureError.

    `headers` is looked up case-insensitively as HTTP requires; `secrets` may list the old and the new secret
    during a rotation.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get(TIMESTAMP_HEADER.lower(), "")
    raw_sig = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not raw_ts.isdigit():
        raise SignatureError(f"missing or malformed {TIMESTAMP_HEADER}")
    timestamp = int(raw_ts)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"{TIMESTAMP_HEADER} outside the {tolerance_seconds} s tolerance")
    offered = [
        value.strip().removeprefix(f"{SCHEME}=")
        for value in raw_sig.split(",")
        if value.strip().startswith(f"{SCHEME}=")
    ]
    if not offered:
        raise SignatureError(f"missing or malformed {SIGNATURE_HEADER} (expected {SCHEME}=<hex>)")
    keys = [secrets] if isinstance(secrets, str) else secrets
    expected = [signature(s, timestamp, body) for s in keys]
    # Every pair is compared (no early exit), each in constant time.
    matched = False
    for candidate in offered:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), wanted.encode("ascii"))
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp
