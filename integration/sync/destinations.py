"""Destinations the sync engine delivers to, read from TOML and validated once, at load.

`config/destinations.toml` by default (setting `destinations_file`, env `HORIZON_DESTINATIONS`). Each
`[[destination]]` table names its own fields; every error names the destination and the field.
Secrets never live in the file: a bearer token is read from the env var the file names, a SMART
private key from a key file (or the service's own active signing key).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apscheduler.triggers.cron import CronTrigger

from integration.net import is_loopback
from integration.sync import pull_config
from integration.sync.pull_config import PullConfig

KINDS = ("ehr", "referrer")
AUTH_TYPES = ("smart-backend", "bearer", "none")
WRITE_MODES = ("transaction", "batch", "individual", "auto")
WRITE_BY = ("id", "identifier", "auto")
PATIENTS = ("all", "consented")
ALGS = ("RS384", "ES384")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_FORBIDDEN_HEADERS = {"authorization", "host", "content-length", "cookie", "proxy-authorization"}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SECRET_KEYS = {"token", "secret", "client_secret", "password", "private_key"}


class DestinationConfigError(ValueError):
    """The destinations file cannot be used; the message names the destination and the field."""


@dataclass(frozen=True)
class AuthConfig:
    type: str
    client_id: str = ""
    token_url: str = ""
    scope: str = ""
    alg: str = "RS384"
    private_key_file: str = ""  # empty: sign with the service's own active key
    token_env: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 900.0
    retry_after_cap_seconds: float = 3600.0


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown_seconds: float = 300.0


@dataclass(frozen=True)
class Schedule:
    cron: str = ""
    every_seconds: int = 0

    def trigger(self) -> tuple[str, dict[str, Any]]:
        """APScheduler trigger name and arguments."""
        if self.cron:
            minute, hour, day, month, dow = self.cron.split()
            return "cron", {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": dow}
        return "interval", {"seconds": self.every_seconds}


@dataclass(frozen=True)
class Destination:
    name: str
    kind: str
    base_url: str
    auth: AuthConfig
    schedule: Schedule
    enabled: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    resource_types: tuple[str, ...] = ()  # empty: every type
    patients: str = "all"
    write_mode: str = "auto"
    write_by: str = "id"
    batch_size: int = 100
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    lane_lease: float | None = None  # None: derived from the timeouts (see lease_seconds)
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    pull: PullConfig | None = None  # what to pull from this EHR (referrals, demographics); None: nothing

    @property
    def origin(self) -> str:
        return origin_of(self.base_url)

    @property
    def lease_seconds(self) -> float:
        """How long a worker holds the lanes it claimed: one exchange (connect + read, replayed once
        after a 401) must fit in it, or another worker could take the lane while it is still sending."""
        if self.lane_lease is not None:
            return self.lane_lease
        return self.connect_timeout + 2 * self.read_timeout + 30

    def stale_run_seconds(self, floor: float) -> float:
        """After how long without a heartbeat a run of this destination counts as dead: never below
        twice the lane lease, since a live run heartbeats at least once per batch (push) or request
        (pull), each bounded by the lease, plus the database work around it."""
        return max(float(floor), 2 * self.lease_seconds)

    @property
    def delivers(self) -> bool:
        """Referrer entries are accepted but delivered by the summaries feature, not by this engine."""
        return self.enabled and self.kind == "ehr"

    @property
    def pulls(self) -> bool:
        """An enabled EHR destination with a pull table that pulls something."""
        return self.enabled and self.kind == "ehr" and self.pull is not None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def load(path: str | Path) -> list[Destination]:
    """The EHR destinations of a destinations file; a missing file means none."""
    return load_all(path)[0]


def load_all(path: str | Path) -> tuple[list[Destination], list[dict[str, Any]]]:
    """(EHR destinations, validated; referrer tables, raw) of a destinations file."""
    path = Path(path)
    if not path.is_file():
        return [], []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DestinationConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse(data, str(path)), referrer_tables(data, str(path))


def _entries(data: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    unknown = set(data) - {"destination"}
    if unknown:
        raise DestinationConfigError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}")
    entries = data.get("destination", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DestinationConfigError(f"{source}: use [[destination]] tables")
    names = [e.get("name") for e in entries]
    dupes = sorted({str(n) for n in names if n is not None and names.count(n) > 1})
    if dupes:
        raise DestinationConfigError(f"{source}: destination {dupes[0]!r} is declared twice")
    for index, entry in enumerate(entries):
        if entry.get("kind") not in KINDS:
            label = f"{source}: destination {entry.get('name', f'#{index + 1}')!r}"
            raise DestinationConfigError(f"{label}, field 'kind': must be one of {', '.join(KINDS)}")
    return entries


def parse(data: Mapping[str, Any], source: str = "destinations") -> list[Destination]:
    """The `kind = "ehr"` tables, validated; every error names the destination and the field."""
    out: list[Destination] = []
    for index, entry in enumerate(_entries(data, source)):
        if entry["kind"] != "ehr":
            continue
        label = f"{source}: destination {entry.get('name', f'#{index + 1}')!r}"
        out.append(_Reader(entry, label).destination())
    return out


def referrer_tables(data: Mapping[str, Any], source: str = "destinations") -> list[dict[str, Any]]:
    """The `kind = "referrer"` tables as written: the referrer-summary feature validates and delivers them."""
    return [dict(entry) for entry in _entries(data, source) if entry["kind"] == "referrer"]


def parse_auth(entry: Mapping[str, Any], label: str) -> AuthConfig:
    """The `auth` table of any destination table (e.g. a referrer's FHIR channel), checked the same way."""
    return _Reader(entry, label).auth()


def check_url(url: str, label: str) -> str:
    """https anywhere, http only to loopback; no credentials, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationConfigError(f"{label} must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise DestinationConfigError(f"{label} must use https (plain http only to a loopback address)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise DestinationConfigError(f"{label} must carry no credentials, query or fragment")
    return url.rstrip("/")


class _Reader:
    """Typed field access on one destination table, every error naming destination and field."""

    _FIELDS: frozenset[str] = frozenset(
        {
            "name",
            "kind",
            "base_url",
            "auth",
            "schedule",
            "enabled",
            "headers",
            "resource_types",
            "patients",
            "write_mode",
            "write_by",
            "batch_size",
            "timeouts",
            "retry",
            "breaker",
            "pull",
        }
    )

    def __init__(self, entry: Mapping[str, Any], label: str) -> None:
        self.entry = entry
        self.label = label

    def fail(self, fieldname: str, message: str) -> DestinationConfigError:
        return DestinationConfigError(f"{self.label}, field {fieldname!r}: {message}")

    def get(
        self, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any, path: str
    ) -> Any:
        value = table.get(key, default)
        if value is None:
            raise self.fail(path, "is required")
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.fail(path, "must be a number")
        if not isinstance(value, kind):
            raise self.fail(path, f"has the wrong type ({type(value).__name__})")
        return value

    def table(self, key: str, allowed: set[str]) -> Mapping[str, Any]:
        value = self.get(self.entry, key, dict, {}, key)
        extra = sorted(set(value) - allowed)
        if extra:
            secret = extra[0] in _SECRET_KEYS
            hint = "secrets come from the environment only" if secret else f"known: {sorted(allowed)}"
            raise self.fail(f"{key}.{extra[0]}", f"is not allowed here ({hint})")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None) -> str:
        value = self.get(self.entry, key, str, default, key)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}")
        return value

    def positive(self, table: Mapping[str, Any], key: str, default: float, path: str) -> Any:
        value = self.get(table, key, (int, float), default, path)
        if value <= 0:
            raise self.fail(path, "must be greater than 0")
        return value

    def destination(self) -> Destination:
        extra = sorted(set(self.entry) - self._FIELDS)
        if extra:
            raise self.fail(extra[0], "is not a destination field")
        name = self.get(self.entry, "name", str, None, "name")
        if not _NAME.match(name):
            raise self.fail("name", "must be lowercase letters, digits and dashes (at most 63)")
        base_url = self.get(self.entry, "base_url", str, None, "base_url")
        try:
            base_url = check_url(base_url, "must")
        except DestinationConfigError as exc:
            raise self.fail("base_url", str(exc)) from None
        batch_size = self.get(self.entry, "batch_size", int, 100, "batch_size")
        if not 1 <= batch_size <= 1000:
            raise self.fail("batch_size", "must be between 1 and 1000")
        types = self.get(self.entry, "resource_types", list, [], "resource_types")
        if not all(isinstance(t, str) and re.fullmatch(r"[A-Z][A-Za-z]{1,63}", t) for t in types):
            raise self.fail("resource_types", "must be a list of FHIR resource type names")
        timeouts = self.table("timeouts", {"connect_seconds", "read_seconds", "lease_seconds"})
        connect = float(self.positive(timeouts, "connect_seconds", 5, "timeouts.connect_seconds"))
        read = float(self.positive(timeouts, "read_seconds", 30, "timeouts.read_seconds"))
        lease = None
        if "lease_seconds" in timeouts:
            lease = float(self.positive(timeouts, "lease_seconds", 1, "timeouts.lease_seconds"))
            if lease < connect + 2 * read:
                raise self.fail(
                    "timeouts.lease_seconds",
                    f"must be at least connect_seconds + 2 x read_seconds ({connect + 2 * read:g}): "
                    "a write with a token refresh may take that long, and must not outlive its lease",
                )
        return Destination(
            name=name,
            kind=self.choice("kind", KINDS, None),
            base_url=base_url,
            auth=self.auth(),
            schedule=self.schedule(),
            enabled=self.get(self.entry, "enabled", bool, True, "enabled"),
            headers=self.headers(),
            resource_types=tuple(types),
            patients=self.choice("patients", PATIENTS, "all"),
            write_mode=self.choice("write_mode", WRITE_MODES, "auto"),
            write_by=self.choice("write_by", WRITE_BY, "id"),
            batch_size=batch_size,
            connect_timeout=connect,
            read_timeout=read,
            lane_lease=lease,
            retry=self.retry(),
            breaker=self.breaker(),
            pull=pull_config.read(self),
        )

    def auth(self) -> AuthConfig:
        t = self.table(
            "auth", {"type", "client_id", "token_url", "scope", "alg", "private_key_file", "token_env"}
        )
        kind = self.get(t, "type", str, None, "auth.type")
        if kind not in AUTH_TYPES:
            raise self.fail("auth.type", f"must be one of {', '.join(AUTH_TYPES)}")
        if kind == "none":
            return AuthConfig(type="none")
        if kind == "bearer":
            env = self.get(t, "token_env", str, None, "auth.token_env")
            if not _ENV_NAME.match(env):
                raise self.fail("auth.token_env", "must name an environment variable (A-Z, 0-9, _)")
            return AuthConfig(type="bearer", token_env=env)
        token_url = self.get(t, "token_url", str, None, "auth.token_url")
        try:
            token_url = check_url(token_url, "must")
        except DestinationConfigError as exc:
            raise self.fail("auth.token_url", str(exc)) from None
        alg = self.get(t, "alg", str, "RS384", "auth.alg")
        if alg not in ALGS:
            raise self.fail("auth.alg", f"must be one of {', '.join(ALGS)}")
        key_file = self.get(t, "private_key_file", str, "", "auth.private_key_file")
        if key_file and not Path(key_file).is_file():
            raise self.fail("auth.private_key_file", "names no readable file")
        return AuthConfig(
            type="smart-backend",
            client_id=self.get(t, "client_id", str, None, "auth.client_id"),
            token_url=token_url,
            scope=self.get(t, "scope", str, None, "auth.scope"),
            alg=alg,
            private_key_file=key_file,
        )

    def headers(self) -> dict[str, str]:
        raw = self.get(self.entry, "headers", dict, {}, "headers")
        for key, value in raw.items():
            path = f"headers.{key}"
            if not _HEADER.match(key) or key.lower() in _FORBIDDEN_HEADERS:
                raise self.fail(path, "is not a header this file may set")
            if not isinstance(value, str) or any(c in value for c in "\r\n"):
                raise self.fail(path, "must be a single-line string")
        return dict(raw)

    def schedule(self, table: object = None, path: str = "schedule") -> Schedule:
        """The destination's schedule table, or another one (e.g. `pull.schedule`) given with its path."""
        if table is None:
            t = self.table("schedule", {"cron", "every_seconds"})
        elif not isinstance(table, dict):
            raise self.fail(path, "must be a table")
        else:
            t = table
            extra = sorted(set(t) - {"cron", "every_seconds"})
            if extra:
                raise self.fail(f"{path}.{extra[0]}", "is not allowed here (known: cron, every_seconds)")
        if ("cron" in t) == ("every_seconds" in t):
            raise self.fail(path, "give exactly one of cron or every_seconds")
        if "cron" in t:
            cron = self.get(t, "cron", str, None, f"{path}.cron")
            try:
                CronTrigger.from_crontab(cron)
            except ValueError as exc:
                raise self.fail(f"{path}.cron", f"is not a 5-field crontab expression ({exc})") from None
            return Schedule(cron=cron)
        every = self.get(t, "every_seconds", int, None, f"{path}.every_seconds")
        if every < 10:
            raise self.fail(f"{path}.every_seconds", "must be at least 10")
        return Schedule(every_seconds=every)

    def retry(self) -> RetryPolicy:
        t = self.table("retry", {"max_attempts", "base_seconds", "max_seconds", "retry_after_cap_seconds"})
        d = RetryPolicy()
        attempts = self.get(t, "max_attempts", int, d.max_attempts, "retry.max_attempts")
        if not 1 <= attempts <= 100:
            raise self.fail("retry.max_attempts", "must be between 1 and 100")
        base = float(self.positive(t, "base_seconds", d.base_seconds, "retry.base_seconds"))
        top = float(self.positive(t, "max_seconds", d.max_seconds, "retry.max_seconds"))
        if top < base:
            raise self.fail("retry.max_seconds", "must not be below retry.base_seconds")
        cap = float(
            self.positive(
                t, "retry_after_cap_seconds", d.retry_after_cap_seconds, "retry.retry_after_cap_seconds"
            )
        )
        return RetryPolicy(attempts, base, top, cap)

    def breaker(self) -> BreakerPolicy:
        t = self.table("breaker", {"failure_threshold", "cooldown_seconds"})
        d = BreakerPolicy()
        threshold = self.get(t, "failure_threshold", int, d.failure_threshold, "breaker.failure_threshold")
        if threshold < 1:
            raise self.fail("breaker.failure_threshold", "must be at least 1")
        cooldown = float(self.positive(t, "cooldown_seconds", d.cooldown_seconds, "breaker.cooldown_seconds"))
        return BreakerPolicy(threshold, cooldown)
