"""The pause switch and circuit breaker of a destination, applied to every request a pull makes.

Pulls share the destination's breaker with deliveries (decided for issue 5's pull): the breaker
stands for the health of the partner's server (one origin, one set of timeouts, one token), not of
one direction of traffic; an EHR that is down fails reads and writes alike, and a pull must not keep
hammering it while deliveries wait out the cool-down (nor the reverse). So a temporary failure of a
pull request (no answer, 408, 429, 3xx, 5xx, 401 after a fresh token) counts toward opening it, a
sane answer (2xx, or a 4xx: the server judged the request) counts as health, and a half-open circuit
lets the next request through as its probe, whichever direction makes it. A per-entry backoff keeps
deliveries from hammering a server that reads fine but refuses writes, so sharing costs nothing there.

Checked before every request (one small read): a paused destination or an open circuit stops the
pull with `PullStopped`; what was stored until then stays stored and the watermark of an unfinished
page does not move, so the next pull picks up where this one stopped. The run's heartbeat is written
here too (at most every `HEARTBEAT_SECONDS`), so a long pull never looks dead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from integration.settings import Settings
from integration.store.db import Database
from integration.sync import retry
from integration.sync.auth import AuthError
from integration.sync.breaker import Breaker
from integration.sync.client import FHIR_JSON, Answer, FhirClient, TransportError
from integration.sync.destinations import Destination
from integration.sync.runs import RunRepository
from integration.sync.state import DestinationState, StateRepository

HEARTBEAT_SECONDS = 10.0


class PullStopped(Exception):
    """The destination was paused or its circuit is open: the pull stops here (not an error of its data)."""


PAUSED, CIRCUIT_OPEN = "paused", "circuit-open"


def blocked(state: DestinationState, destination: Destination, now: datetime) -> tuple[str, str] | None:
    """(code, message) of why a pull from the destination may not go on now, or None."""
    if state.paused:
        return PAUSED, f"destination {destination.name} is paused; resume it first"
    if not state.breaker.allows(now, destination.breaker):
        assert state.breaker.opened_at is not None
        until = state.breaker.opened_at.timestamp() + destination.breaker.cooldown_seconds
        return CIRCUIT_OPEN, (
            f"destination {destination.name}'s circuit is open after {state.breaker.failures} consecutive "
            f"failures; it half-opens at {datetime.fromtimestamp(until, UTC).isoformat(timespec='seconds')}"
        )
    return None


def pull_blocked(db: Database, destination: Destination) -> tuple[str, str] | None:
    with db.writer() as conn:  # get() creates the state row on first use
        state = StateRepository(conn).get(destination.name)
    return blocked(state, destination, datetime.now(UTC))


class GuardedClient(FhirClient):
    """The destination's client for pulls: every request checks the switches and feeds the breaker."""

    def __init__(
        self, db: Database, destination: Destination, settings: Settings, run_id: str | None
    ) -> None:
        super().__init__(destination, settings)
        self.db = db
        self.run_id = run_id
        self._beat = time.monotonic()
        with db.writer() as conn:  # get() creates the state row on first use: then every check only reads
            StateRepository(conn).get(destination.name)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = FHIR_JSON,
        accept: str = FHIR_JSON,
        extra: Mapping[str, str] | None = None,
    ) -> Answer:
        with self.db.reader() as conn:
            state = StateRepository(conn).get(self.destination.name)
        why = blocked(state, self.destination, datetime.now(UTC))
        if why is not None:
            raise PullStopped(why[1])
        try:
            answer = super().request(method, path, body, content_type, accept, extra)
        except (TransportError, AuthError):
            self._record(state.breaker, healthy=False)
            raise
        self._record(
            state.breaker,
            healthy=retry.classify(answer.status) is retry.Verdict.OK
            or retry.classify(answer.status) is retry.Verdict.DEAD,
        )
        return answer

    def _record(self, seen: Breaker, healthy: bool) -> None:
        """Write the breaker only when it changes (a healthy answer on a clean breaker writes nothing)."""
        beat = self.run_id is not None and time.monotonic() - self._beat >= HEARTBEAT_SECONDS
        if healthy and seen == Breaker() and not beat:
            return
        now = datetime.now(UTC)
        with self.db.writer() as conn:
            states = StateRepository(conn)
            current = states.get(self.destination.name).breaker  # as of now: a delivery may have moved it
            after = current.success() if healthy else current.failure(now, self.destination.breaker)
            if after != current:
                states.set_breaker(self.destination.name, after)
            if beat:
                assert self.run_id is not None
                RunRepository(conn).touch(self.run_id, now)
                self._beat = time.monotonic()
