"""Every setting of the service, declared once: name, env var, type, default and meaning.

Values come from, in rising precedence: the defaults below, the TOML file (`config/settings.toml`,
or the file named by `HORIZON_CONFIG`), then the environment. Secrets are read from the
environment only; a secret found in a file is a configuration error, so none is ever committed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "settings.toml"
CONFIG_ENV = "HORIZON_CONFIG"


class ConfigError(ValueError):
    """The configuration cannot be used as given (bad value, unknown key, secret in a file)."""


def setting(env: str, default: Any, doc: str, *, secret: bool = False) -> Any:
    """Declare one setting as a dataclass field carrying its env var and documentation."""
    return field(default=default, metadata={"env": env, "doc": doc, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """The service configuration. Field name = key in the TOML file."""

    database_url: str = setting(
        "DATABASE_URL",
        "sqlite:///var/horizon.db",
        "SQLAlchemy URL of the store. SQLite (a relative path is relative to the working directory) "
        "or PostgreSQL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test.",
    )
    host: str = setting("HOST", "127.0.0.1", "Interface the web server listens on.")
    port: int = setting("PORT", 8000, "TCP port the web server listens on.")
    web_threads: int = setting("HORIZON_WEB_THREADS", 8, "Worker threads of the in-process WSGI server.")
    max_body_bytes: int = setting(
        "HORIZON_MAX_BODY_BYTES", 10 * 1024 * 1024, "Largest request body accepted; larger bodies get 413."
    )
    max_batch_records: int = setting(
        "HORIZON_MAX_BATCH_RECORDS", 5000, "Most records accepted in one POST /api/v1/batch; more gets 413."
    )
    db_pool_size: int = setting("HORIZON_DB_POOL_SIZE", 10, "Database connections kept open per process.")
    log_level: str = setting("HORIZON_LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")
    clinic_base_url: str = setting(
        "HORIZON_CLINIC_BASE_URL",
        "https://clinic.example.org/fhir",
        "Root of every clinic URI in FHIR output (identifier systems {base}/sid/{kind}, local CodeSystems, "
        "Questionnaire canonicals). Set it once before go-live: changing it changes every resource.",
    )
    clinic_id: str = setting(
        "HORIZON_CLINIC_ID", "clinic", "The clinic's own id (its Organization's identifier)."
    )
    clinic_name: str = setting("HORIZON_CLINIC_NAME", "Horizon Infusion Clinic", "The clinic's name.")
    clinic_npi: str = setting("HORIZON_CLINIC_NPI", "", "The clinic's organizational NPI (empty: none).")
    clinic_phone: str = setting("HORIZON_CLINIC_PHONE", "", "The clinic's phone number (empty: none).")
    clinic_system_name: str = setting(
        "HORIZON_CLINIC_SYSTEM_NAME",
        "clinic-charting-system",
        "Name of the charting system, the agent recorded in every Provenance.",
    )
    scheduler_enabled: bool = setting(
        "HORIZON_SCHEDULER",
        True,
        "Run the job scheduler inside `make run`'s process. A database lease keeps one leader at a time.",
    )
    scheduler_lease_seconds: int = setting(
        "HORIZON_SCHEDULER_LEASE_SECONDS",
        30,
        "How long the scheduler leader's lease lasts without renewal before another process may take over.",
    )
    public_base_url: str = setting(
        "HORIZON_PUBLIC_BASE_URL",
        "",
        "The service's public root URL as clients see it. The SMART token URL ({base}/auth/token) is built "
        "from it, and client assertions must name that URL as `aud`; the Host header is never trusted. "
        "Empty: http://{host}:{port}, right for `make run` on any PORT; set it behind a proxy or TLS.",
    )
    smart_jwks_url_allowlist: str = setting(
        "HORIZON_SMART_JWKS_URL_ALLOWLIST",
        "",
        "Comma-separated URL prefixes a SMART client's JWKS URL must start with (https, or http on "
        "loopback only). Empty: no JWKS URL is accepted, clients register a JWKS file instead.",
    )
    smart_jwks_cache_seconds: int = setting(
        "HORIZON_SMART_JWKS_CACHE_SECONDS", 300, "How long a fetched SMART client JWKS is reused."
    )
    smart_token_lifetime_seconds: int = setting(
        "HORIZON_SMART_TOKEN_LIFETIME_SECONDS",
        300,
        "Lifetime of SMART access tokens, in seconds; values above 300 are capped at 300.",
    )
    smart_token_rate_window_seconds: int = setting(
        "HORIZON_SMART_TOKEN_RATE_WINDOW_SECONDS",
        60,
        "Length of the fixed windows the SMART token endpoint's rate limits count in, in seconds.",
    )
    smart_token_rate_per_client: int = setting(
        "HORIZON_SMART_TOKEN_RATE_PER_CLIENT",
        30,
        "Token requests one SMART client (its assertion verified) may make per window; more get 429 with "
        "Retry-After. A client needs one per token lifetime. 0: no limit.",
    )
    smart_token_refusals_per_address: int = setting(
        "HORIZON_SMART_TOKEN_REFUSALS_PER_ADDRESS",
        20,
        "Refused token requests (unknown client, bad assertion, malformed request) one remote address "
        "may make per window; after that its requests get 429 with Retry-After until the window ends. "
        "0: no limit.",
    )

    signing_keys_dir: str = setting(
        "HORIZON_SIGNING_KEYS_DIR",
        "var/keys",
        "Directory (mode 0700; relative to the working directory) of the private keys the service signs "
        "its own SMART client assertions with, one PEM file (0600) each, plus their state file. Never in "
        "the database; back it up like any secret. Managed with `flask --app wsgi keys ...`.",
    )
    export_dir: str = setting(
        "HORIZON_EXPORT_DIR",
        "var/exports",
        "Directory (relative to the working directory) where Bulk Data $export files are written, one "
        "subdirectory (0700) per export job and one per attempt inside it, files 0600. Holds PHI: keep "
        "it on encrypted storage, never on a shared drive.",
    )
    export_retention_seconds: int = setting(
        "HORIZON_EXPORT_RETENTION_SECONDS",
        3600,
        "How long a finished $export's files stay downloadable; the export-cleanup job deletes them after.",
    )
    summary_skipped_retention_days: int = setting(
        "HORIZON_SUMMARY_SKIPPED_RETENTION_DAYS",
        30,
        "Days a `skipped` summary ledger row (a trigger that produced no new document, with the reason) is "
        "kept; the summary-ledger-purge job deletes older ones. Due, prepared, sent and dead rows stay.",
    )
    export_workers: int = setting(
        "HORIZON_EXPORT_WORKERS", 2, "Background threads per web process that write $export files."
    )
    export_file_max_resources: int = setting(
        "HORIZON_EXPORT_FILE_MAX_RESOURCES",
        100000,
        "Most resources in one $export NDJSON file; a type with more is split over several files.",
    )

    drop_folder: str = setting(
        "HORIZON_DROP_FOLDER",
        "",
        "Folder the charting system drops CSV/XML exports into (its inbox/ subfolder), taken in by the "
        "scheduler and filed under done/, rejected/ or failed/ with a report. Empty: no drop folder.",
    )
    drop_folder_poll_seconds: int = setting(
        "HORIZON_DROP_FOLDER_POLL_SECONDS", 30, "Seconds between two looks into the drop folder's inbox."
    )
    drop_folder_min_age_seconds: int = setting(
        "HORIZON_DROP_FOLDER_MIN_AGE_SECONDS",
        10,
        "An inbox entry is taken only once nothing in it changed for this long (a file still being "
        "written waits for the next poll).",
    )

    sync_stale_run_seconds: int = setting(
        "HORIZON_SYNC_STALE_RUN_SECONDS",
        300,
        "Seconds without a heartbeat after which a running sync or pull run counts as dead (its worker "
        "crashed) and the next trigger starts a new one. A live run heartbeats after every batch (push) "
        "or request (pull), each bounded by the destination's lane lease, so the bound used is never below "
        "twice that lease (default lease: connect + 2 x read timeout + 30 s, i.e. 95 s).",
    )
    sync_sent_retention_days: int = setting(
        "HORIZON_SYNC_SENT_RETENTION_DAYS",
        30,
        "Days a sent outbox row of a superseded resource version is kept; the hourly sync-retention job "
        "deletes older ones. The row of each resource's current version stays (a full sync would resend "
        "it otherwise), as do pending and dead rows. A referrer summary's request rows go after the same "
        "time once the ledger records the document sent (summary-ledger-purge job). 0: keep all.",
    )
    sync_run_retention_days: int = setting(
        "HORIZON_SYNC_RUN_RETENTION_DAYS",
        90,
        "Days a finished sync or pull run is kept; the hourly sync-retention job deletes older ones, "
        "except each destination's newest run. Running runs stay. 0: keep all.",
    )
    destinations_file: str = setting(
        "HORIZON_DESTINATIONS",
        "config/destinations.toml",
        "TOML file of the destinations the sync engine delivers to (relative to the working directory); "
        "a missing file means no destinations. Validated when the app starts.",
    )

    admin_session_idle_seconds: int = setting(
        "HORIZON_ADMIN_SESSION_IDLE_SECONDS",
        900,
        "An admin browser session unused for this many seconds ends; the admin logs in again.",
    )
    admin_session_lifetime_seconds: int = setting(
        "HORIZON_ADMIN_SESSION_LIFETIME_SECONDS",
        28800,
        "An admin browser session ends this many seconds after login, however busy it is.",
    )
    admin_cookie_secure: bool = setting(
        "HORIZON_ADMIN_COOKIE_SECURE",
        True,
        "Mark the admin session cookie Secure (sent over https only). With true, a public_base_url of "
        "plain http on a loopback host (`make run`) still gets a cookie without the flag, since nothing "
        "leaves the machine; any other http public_base_url refuses browser login. false: never Secure "
        "(only for a test rig without TLS).",
    )
    admin_login_max_failures: int = setting(
        "HORIZON_ADMIN_LOGIN_MAX_FAILURES",
        5,
        "Failed admin browser logins allowed from one address within admin_login_window_seconds; "
        "further attempts get 429 until the window has passed (counted from the audit log).",
    )
    admin_login_window_seconds: int = setting(
        "HORIZON_ADMIN_LOGIN_WINDOW_SECONDS",
        900,
        "The window over which failed admin browser logins are counted.",
    )

    def __post_init__(self) -> None:
        if not self.public_base_url:
            host = f"[{self.host}]" if ":" in self.host else self.host
            object.__setattr__(self, "public_base_url", f"http://{host}:{self.port}")

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from defaults, the config file, the environment and explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = env.get(CONFIG_ENV)
        path = Path(config_path) if config_path else DEFAULT_CONFIG_FILE
        if config_path and not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} names {path}, which is not a readable file")
        if path.is_file():
            values.update(_read_file(path))
        hints = get_type_hints(cls)
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, hints[f.name], raw)
        values.update(overrides)
        return cls(**values)

    def describe(self) -> list[dict[str, Any]]:
        """The settings table (for the README and logs), with secret values masked."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value:
                value = "***"
            elif f.name == "database_url":
                value = redact_url(value)
            rows.append({"name": f.name, "env": f.metadata["env"], "value": value, "doc": f.metadata["doc"]})
        return rows


def redact_url(url: str) -> str:
    """Hide a password inside a database URL before it is shown anywhere."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    known = {f.name: f for f in fields(Settings)}
    hints = get_type_hints(Settings)
    out: dict[str, Any] = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        if f.metadata["secret"]:
            raise ConfigError(f"{path}: {key!r} is a secret; set it in the environment ({f.metadata['env']})")
        expected = hints[key]
        if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
            raise ConfigError(f"{path}: {key!r} must be {expected.__name__}, got {type(value).__name__}")
        out[key] = value
    return out


def _coerce(name: str, expected: type, raw: str) -> Any:
    if expected is str:
        return raw
    if expected is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"setting {name}: {raw!r} is not a boolean (true/false)")
    if expected is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"setting {name}: {raw!r} is not an integer") from None
    raise ConfigError(f"setting {name}: unsupported type {expected!r}")


def defaults() -> dict[str, Any]:
    """Default value of every setting, by name (used to check the committed TOML stays in step)."""
    return {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
