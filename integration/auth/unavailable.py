"""A credential check that cannot reach the database answers 503 with Retry-After, never a bare 500.

An outage is not the client's fault and passes: the client should come back later, and monitoring
should see "unavailable", not "internal error". The log names the failure's class only: SQLAlchemy's
message would carry the statement's parameters, and those include the presented token's digest. The
refusal is audited if the audit log can still be written (a partial outage, e.g. a lock timeout on
the token table), and the response is 503 either way: nothing is served, so nothing goes unaudited.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from flask import current_app
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from integration.audit import audit, mark_written
from integration.http_errors import ApiError
from integration.store.audit import AuditRepository

log = logging.getLogger(__name__)

# What a database that is down, restarting, locked or out of connections raises (not SQL errors).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)
RETRY_AFTER_SECONDS = 5


def refuse_unavailable(action: str, exc: BaseException, error: type[ApiError] = ApiError) -> NoReturn:
    """Log and (best effort) audit a credential check the database could not answer; raise 503."""
    cause = type(getattr(exc, "orig", None) or exc).__name__
    log.error("bearer token check failed: the database is unavailable (%s)", cause)
    entry = audit(action, detail={"reason": "database_unavailable"})
    entry.outcome = 503
    try:
        with current_app.extensions["horizon.db"].writer() as conn:
            AuditRepository(conn).record(entry)
    except Exception:
        log.warning("the refusal could not be audited either: the database is unavailable")
    mark_written()  # written or not, the after-request hook must not replace this 503 with its own
    raise error(
        503,
        "unavailable",
        "access tokens cannot be checked right now; retry later",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
