"""Circuit breaker per destination, pure: opens after N consecutive failures, half-opens after a cool-down.

Closed: deliver. Open: deliver nothing until the cool-down has passed. Half-open: one probe request;
success closes the circuit, failure opens it again for another cool-down. Only temporary failures
(network, 408, 429, 5xx) count; a dead-lettered entry is the partner judging our data, not its health.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from integration.sync.destinations import BreakerPolicy

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True)
class Breaker:
    state: str = CLOSED
    failures: int = 0
    opened_at: datetime | None = None

    def current(self, now: datetime, policy: BreakerPolicy) -> str:
        """The state as of now: an open circuit whose cool-down has passed is half-open."""
        cooled = self.opened_at is not None and now >= self.opened_at + timedelta(
            seconds=policy.cooldown_seconds
        )
        if self.state == OPEN and cooled:
            return HALF_OPEN
        return self.state

    def allows(self, now: datetime, policy: BreakerPolicy) -> bool:
        return self.current(now, policy) != OPEN

    def success(self) -> Breaker:
        return Breaker()

    def failure(self, now: datetime, policy: BreakerPolicy) -> Breaker:
        if self.current(now, policy) == HALF_OPEN:
            return Breaker(OPEN, self.failures + 1, now)
        failures = self.failures + 1
        if failures >= policy.failure_threshold:
            return Breaker(OPEN, failures, now)
        return replace(self, failures=failures)
