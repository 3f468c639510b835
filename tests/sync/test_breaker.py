"""Circuit breaker: opens after N consecutive failures, half-opens after the cool-down, closes on success."""

from datetime import UTC, datetime, timedelta

from integration.sync.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from integration.sync.destinations import BreakerPolicy

POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=60)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_opens_after_threshold_and_resumes_by_itself():
    b = Breaker()
    for _ in range(2):
        b = b.failure(T0, POLICY)
        assert b.current(T0, POLICY) == CLOSED and b.allows(T0, POLICY)
    b = b.failure(T0, POLICY)
    assert b.current(T0, POLICY) == OPEN and not b.allows(T0 + timedelta(seconds=59), POLICY)
    later = T0 + timedelta(seconds=60)
    assert b.current(later, POLICY) == HALF_OPEN and b.allows(later, POLICY)
    assert b.success().current(later, POLICY) == CLOSED


def test_a_failed_probe_opens_again_for_a_new_cool_down():
    b = Breaker(OPEN, 3, T0)
    probe_time = T0 + timedelta(seconds=61)
    b = b.failure(probe_time, POLICY)
    assert b.state == OPEN and b.opened_at == probe_time
    assert not b.allows(probe_time + timedelta(seconds=30), POLICY)


def test_success_resets_the_count():
    b = Breaker().failure(T0, POLICY).failure(T0, POLICY).success().failure(T0, POLICY)
    assert b.failures == 1 and b.state == CLOSED
