"""Referrer destinations: the `kind = "referrer"` tables of the destinations TOML, parsed and checked.

Only the referrer-specific part lives here; the file itself, its env var (`HORIZON_DESTINATIONS`) and the
`kind = "ehr"` tables belong to the sync engine, which hands each `[[destination]]` table of kind
`referrer` to `parse_referrer`. One table:

    [[destination]]
    name = "dr-ruiz"                 # unique destination name (also what patient consent lists)
    kind = "referrer"
    practitioner = "dr-7"            # the referring Practitioner: clinic id, or NPI (10 digits)
    channel = "webhook"              # "fhir" (POST document Bundle + DocumentReference) or "webhook"
    url = "https://ruiz.example.org/hooks/horizon"   # https; plain http only to a loopback address
    secret_env = "RUIZ_WEBHOOK_SECRET"               # webhook: env var holding the HMAC secret
    triggers = ["session-completed", "safety-signal"]
    digest_schedule = "0 7 * * mon"  # cron (UTC), required with "weekly-digest"
    enabled = true                   # default true
    # channel "fhir" may carry an `auth` table; the sync engine's parser interprets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from apscheduler.triggers.cron import CronTrigger

from integration.net import is_loopback

TRIGGERS = ("session-completed", "series-completed", "weekly-digest", "safety-signal")
CHANNELS = ("fhir", "webhook")
_KEYS = {
    "name",
    "kind",
    "practitioner",
    "channel",
    "url",
    "secret_env",
    "triggers",
    "digest_schedule",
    "enabled",
    "auth",
}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ReferrerConfigError(ValueError):
    """A referrer table that cannot be used; the message names the destination, the field and the rule."""


@dataclass(frozen=True, slots=True)
class Referrer:
    """One referring physician's system and when it gets summaries."""

    name: str
    practitioner: str
    channel: str
    url: str
    triggers: frozenset[str]
    secret_env: str | None = None
    digest_schedule: str | None = None
    enabled: bool = True
    auth: Mapping[str, Any] | None = field(default=None, compare=False)

    def wants(self, trigger: str) -> bool:
        return self.enabled and trigger in self.triggers


def parse_referrer(table: Mapping[str, Any]) -> Referrer:
    """One `[[destination]]` table of kind `referrer`, checked field by field."""
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ReferrerConfigError("referrer destination: field 'name' is required (a non-empty string)")

    def fail(key: str, rule: str) -> ReferrerConfigError:
        return ReferrerConfigError(f"destination {name!r}: field {key!r}: {rule}")

    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(_KEYS))})")
    if table.get("kind") != "referrer":
        raise fail("kind", 'must be "referrer" here')
    practitioner = table.get("practitioner")
    if not isinstance(practitioner, str) or not practitioner.strip():
        raise fail("practitioner", "required: the referring practitioner's clinic id or NPI")
    channel = table.get("channel")
    if channel not in CHANNELS:
        raise fail("channel", f"must be one of {', '.join(CHANNELS)}")
    url = table.get("url")
    if not isinstance(url, str):
        raise fail("url", "required (a string)")
    problem = url_problem(url)
    if problem:
        raise fail("url", problem)
    secret_env = table.get("secret_env")
    if channel == "webhook":
        if not isinstance(secret_env, str) or not _ENV_NAME.match(secret_env):
            raise fail("secret_env", "a webhook needs the NAME of the env var holding its HMAC secret")
    elif secret_env is not None:
        raise fail("secret_env", "only a webhook channel is signed with a secret")
    triggers = table.get("triggers")
    if not isinstance(triggers, list) or not triggers or not all(isinstance(t, str) for t in triggers):
        raise fail("triggers", f"a non-empty list of: {', '.join(TRIGGERS)}")
    bad = [t for t in triggers if t not in TRIGGERS]
    if bad:
        raise fail("triggers", f"unknown trigger {bad[0]!r} (known: {', '.join(TRIGGERS)})")
    schedule = table.get("digest_schedule")
    if "weekly-digest" in triggers:
        if not isinstance(schedule, str):
            raise fail("digest_schedule", "required with the weekly-digest trigger (a cron expression)")
        try:
            CronTrigger.from_crontab(schedule, timezone=UTC)
        except ValueError as exc:
            raise fail("digest_schedule", f"not a valid cron expression ({exc})") from None
    elif schedule is not None:
        raise fail("digest_schedule", "only used with the weekly-digest trigger")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", "must be true or false")
    auth = table.get("auth")
    if auth is not None and (channel != "fhir" or not isinstance(auth, Mapping)):
        raise fail("auth", "a table, for the fhir channel only")
    return Referrer(
        name=name,
        practitioner=practitioner.strip(),
        channel=channel,
        url=url,
        triggers=frozenset(triggers),
        secret_env=secret_env,
        digest_schedule=schedule,
        enabled=enabled,
        auth=auth,
    )


def parse_referrers(tables: Iterable[Mapping[str, Any]]) -> tuple[Referrer, ...]:
    """The referrer tables among all destinations (other kinds skipped); names must be unique."""
    out: list[Referrer] = []
    for table in tables:
        if table.get("kind") == "referrer":
            referrer = parse_referrer(table)
            if any(r.name == referrer.name for r in out):
                raise ReferrerConfigError(f"destination {referrer.name!r}: field 'name': used twice")
            out.append(referrer)
    return tuple(out)


def url_problem(url: str) -> str | None:
    """Why this URL may not receive PHI, or None: https, or plain http to a loopback address only."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "plain http only to a loopback address; use https"
    if parts.username or parts.password:
        return "must not carry credentials (use secret_env or auth)"
    if parts.fragment:
        return "must not carry a fragment"
    return None
