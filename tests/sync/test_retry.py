"""Retry policy: verdicts per status, Retry-After parsing (seconds and HTTP date, capped), backoff bounds."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from integration.sync.destinations import RetryPolicy
from integration.sync.retry import Verdict, backoff, classify, next_delay, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.OK),
        (201, Verdict.OK),
        (204, Verdict.OK),
        (401, Verdict.REFRESH),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (302, Verdict.RETRY),
        (400, Verdict.DEAD),
        (403, Verdict.DEAD),
        (404, Verdict.DEAD),
        (409, Verdict.DEAD),
        (412, Verdict.DEAD),
        (422, Verdict.DEAD),
    ],
)
def test_classify(status, verdict):
    assert classify(status) is verdict


def test_retry_after_seconds_date_and_cap():
    assert parse_retry_after("7", NOW, 3600) == 7
    assert parse_retry_after("99999", NOW, 60) == 60
    later = format_datetime(NOW + timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(later, NOW, 3600) == 120
    earlier = format_datetime(NOW - timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(earlier, NOW, 3600) == 0
    assert parse_retry_after(None, NOW, 60) is None
    assert parse_retry_after("soon", NOW, 60) is None
    assert parse_retry_after("-5", NOW, 60) is None


def test_backoff_grows_with_jitter_and_stays_capped():
    policy = RetryPolicy(max_attempts=10, base_seconds=1, max_seconds=30)
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(30, 2 ** (attempt - 1))
        for _ in range(20):
            assert ceiling / 2 <= backoff(attempt, policy, rng) <= ceiling
    delays = {round(backoff(4, policy, rng), 3) for _ in range(20)}
    assert len(delays) > 5  # jittered


def test_retry_after_wins_over_backoff():
    policy = RetryPolicy(base_seconds=1, max_seconds=30)
    assert next_delay(3, policy, 12.0) == 12.0
    assert 2 <= next_delay(3, policy, None) <= 4
