"""The retry policy, pure: what an HTTP answer means for a delivery, and how long to wait before the next try.

Temporary (retry with backoff): connection errors, 408, 429, 5xx. 401: refresh the token once and
replay. Permanent (dead letter with the partner's answer): 400, 422, 409, 412 and every other 4xx.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

from integration.sync.destinations import RetryPolicy


class Verdict(Enum):
    OK = "ok"
    RETRY = "retry"
    REFRESH = "refresh"  # 401: new token, same request, once
    DEAD = "dead"


def classify(status: int) -> Verdict:
    """The verdict for an HTTP status (a 3xx is a refused redirect: temporary, it may be fixed)."""
    if 200 <= status < 300:
        return Verdict.OK
    if status == 401:
        return Verdict.REFRESH
    if status in (408, 429) or status >= 500 or 300 <= status < 400:
        return Verdict.RETRY
    return Verdict.DEAD


def parse_retry_after(value: str | None, now: datetime, cap_seconds: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap_seconds)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - now).total_seconds(), 0.0), cap_seconds)


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for the `attempt`-th failure (1-based), at most max_seconds."""
    ceiling = min(policy.max_seconds, policy.base_seconds * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def next_delay(
    attempt: int, policy: RetryPolicy, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """The wait before the next try: the server's Retry-After when it gave one, else the backoff."""
    if retry_after is not None:
        return retry_after
    return backoff(attempt, policy, rng)
