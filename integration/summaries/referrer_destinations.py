"""Referrers as sync destinations: parsed at app start, each given a `Destination` and its send-time signers.

The destinations file's `kind = "referrer"` tables (kept as written by the sync loader) are checked with
`parse_referrers` into `app.extensions["horizon.referrers"]` (name -> Referrer), and each becomes a sync
`Destination` in `app.extensions["horizon.destinations"]`, so the outbox, retry, dead letters, breaker,
pause/resume and runs of EHR sync serve it too (`delivers` stays False: the sync jobs leave it to
summaries/transport.py). Its base URL is the referrer's `url` (the only origin anything goes to), its
auth the `auth` table checked by the sync parser (fhir channel; none when absent). A webhook is signed
when each request is sent, with the secret read from the environment at that moment (never stored).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

from integration.summaries.referrers import Referrer, ReferrerConfigError, parse_referrers
from integration.summaries.webhook_signing import signed_headers
from integration.sync import service
from integration.sync.destinations import (
    AuthConfig,
    Destination,
    DestinationConfigError,
    Schedule,
    check_url,
    parse_auth,
)
from integration.sync.sender import Signer

REFERRERS = "horizon.referrers"
WEBHOOK_SIGNER = "webhook-hmac-sha256"
DELIVERY_INTERVAL_SECONDS = 30


def destination_for(referrer: Referrer, table: Mapping[str, Any], source: str) -> Destination:
    """The sync Destination of one referrer; errors name the destination and the field."""
    label = f"{source}: destination {referrer.name!r}"
    try:
        base_url = check_url(referrer.url, "must")
    except DestinationConfigError as exc:
        raise ReferrerConfigError(f"{label}, field 'url': {exc}") from None
    if referrer.channel == "webhook":
        base_url = referrer.url  # posted to exactly as written
    auth = parse_auth(table, label) if "auth" in table else AuthConfig(type="none")
    return Destination(
        name=referrer.name,
        kind="referrer",
        base_url=base_url,
        auth=auth,
        schedule=Schedule(every_seconds=DELIVERY_INTERVAL_SECONDS),
        enabled=referrer.enabled,
        write_mode="individual",
        write_by="id",
    )


def load_into(app: Flask, source: str) -> None:
    """Parse the referrer tables once per app; a bad table stops the app (ReferrerConfigError)."""
    tables = app.extensions.get(service.REFERRER_TABLES, [])
    try:
        referrers = parse_referrers(tables)
    except ReferrerConfigError as exc:
        raise ReferrerConfigError(f"{source}: {exc}") from None
    by_name = {r.name: r for r in referrers}
    destinations = service.configured(app)
    for table in tables:
        referrer = by_name[table["name"]]
        destinations[referrer.name] = destination_for(referrer, table, source)
    app.extensions[REFERRERS] = by_name


def signers_for(referrer: Referrer, environ: Mapping[str, str] | None = None) -> dict[str, Signer]:
    """The send-time signers of a referrer's outbox rows: a webhook's HMAC over the body at this second."""
    if referrer.channel != "webhook":
        return {}
    env = environ if environ is not None else os.environ
    name = referrer.secret_env or ""

    def sign(body: bytes) -> Mapping[str, str]:
        secret = env.get(name, "")
        if not secret:
            raise ValueError(f"environment variable {name} (the webhook secret) is not set")
        return signed_headers(secret, body, time.time())

    return {WEBHOOK_SIGNER: sign}


def missing_secret(referrer: Referrer, environ: Mapping[str, str] | None = None) -> str | None:
    """Why this referrer cannot be signed for now (its secret is not in the environment), or None."""
    env = environ if environ is not None else os.environ
    if referrer.channel == "webhook" and not env.get(referrer.secret_env or ""):
        return f"environment variable {referrer.secret_env} (the webhook secret) is not set"
    return None
