"""The schema, designed once for SQLite and PostgreSQL alike; Alembic migrations create it.

Payloads are stored as the exact serialized bytes (text) that were validated on the way in, so
reads, exports and outbound bundles never re-validate or re-serialize.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite stores naive text, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

RECORD_KINDS = ("practitioner", "patient", "referral", "session", "assessment")
RECORD_SOURCES = ("api", "csv", "xml", "ehr")  # ehr: pulled from a destination (sync/pull.py)

# Every version of every clinic record ever accepted; never updated, never deleted.
clinic_record = Table(
    "clinic_record",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("clinic_id", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("source", String(8), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("request_id", String(64), nullable=True),
    UniqueConstraint("kind", "clinic_id", "version"),
    CheckConstraint("kind IN ('practitioner', 'patient', 'referral', 'session', 'assessment')", name="kind"),
    CheckConstraint("source IN ('api', 'csv', 'xml', 'ehr')", name="source"),
    CheckConstraint("version >= 1", name="version"),
)

# The current version of each clinic record: the idempotency check and referential lookups read it.
clinic_record_head = Table(
    "clinic_record_head",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("clinic_id", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("patient_id", String(128), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    ForeignKeyConstraint(
        ["kind", "clinic_id", "version"],
        ["clinic_record.kind", "clinic_record.clinic_id", "clinic_record.version"],
    ),
    Index(None, "patient_id"),
)

# The current version of each FHIR resource (filled by the mapping layer).
fhir_resource = Table(
    "fhir_resource",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", Text, nullable=True),
    Index(None, "patient_id", "resource_type"),
    Index(None, "resource_type", "last_updated"),
)

# Which clinic records produce which resources. A resource some records share (the CarePlan of a
# series) is deleted only when the last record producing it stops doing so. (No foreign key, for
# the same reason as the change feed's.)
fhir_resource_source = Table(
    "fhir_resource_source",
    metadata,
    Column("source_kind", String(16), primary_key=True),
    Column("source_id", String(128), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Index(None, "resource_type", "resource_id"),
)

# Full version history of every FHIR resource (vread, _history); a deletion is a version too.
fhir_resource_version = Table(
    "fhir_resource_version",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", Text, nullable=True),
    Index(None, "resource_type", "last_updated"),
)

# One row per resource version written, in a monotonically increasing sequence: the only source
# that sync and incremental pulls read, so a no-change sync costs the same at any store size.
# No foreign key to the version row: intake writes both in one transaction, and on PostgreSQL the
# per-row referential check (a KEY SHARE row lock) cost ~0.4 ms a row, 10x the insert itself.
change_feed = Table(
    "change_feed",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("resource_type", "resource_id", "version_id"),
)

# Bearer tokens of the clinic API and admin API. Only a SHA-256 of each token is kept.
api_token = Table(
    "api_token",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    CheckConstraint("role IN ('clinic', 'admin')", name="role"),
)

# Who did what to which patient's data, and how it ended. Queryable later as FHIR AuditEvent.
audit_event = Table(
    "audit_event",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("actor", String(100), nullable=True),
    Column("role", String(16), nullable=True),
    Column("action", String(64), nullable=False),
    Column("outcome", Integer, nullable=False),
    Column("patient_id", String(128), nullable=True),
    Column("entity", String(200), nullable=True),
    Column("remote_addr", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Index(None, "recorded_at"),
    Index(None, "patient_id", "recorded_at"),
)

# Named leases (e.g. the scheduler leader): at most one holder until expires_at.
lease = Table(
    "lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

# SMART Backend Services clients (hospital EHRs). Keys: a validated public JWKS stored at
# registration, or a JWKS URL on the configured allow-list; exactly one of the two.
smart_client = Table(
    "smart_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("scope", Text, nullable=False),
    Column("group_id", String(64), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("jwks_url", String(2000), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    CheckConstraint("(jwks IS NULL) <> (jwks_url IS NULL)", name="key_source"),
)

# Client-assertion ids seen (RFC 7523 section 3, item 7), kept until the assertion could no longer
# be accepted anyway. The primary key is what refuses a replay, even between concurrent workers.
smart_jti = Table(
    "smart_jti",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti_hash", String(64), primary_key=True),
    Column("expires_at", UtcDateTime(), nullable=False),
    ForeignKeyConstraint(["client_id"], ["smart_client.client_id"]),
    Index(None, "expires_at"),
)

# SMART access tokens, by SHA-256 only: looked up on every FHIR request, so revocation and expiry
# take effect at once.
smart_access_token = Table(
    "smart_access_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("group_id", String(64), nullable=True),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    ForeignKeyConstraint(["client_id"], ["smart_client.client_id"]),
    Index(None, "client_id"),
    Index(None, "expires_at"),
)

# Rate-limit counters (integration/auth/rate_limit.py): hits of one bucket (e.g. a client id or a
# remote address at the token endpoint) in one fixed window, shared by every worker process.
# window_start is in epoch seconds, a multiple of the window length; past windows are deleted.
rate_limit_window = Table(
    "rate_limit_window",
    metadata,
    Column("bucket", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
    Index(None, "window_start"),
)

# --- FHIR search index (search) ---------------------------------------------------------------
# Values of every search parameter (store/search_params.json) of every current, non-deleted
# resource, one typed table per parameter type, replaced in the transaction that writes the
# version. Each table has a value index led by (resource_type, param, value) that drives a search,
# and a (resource_type, resource_id, param) index that checks one more parameter of a candidate and
# replaces a resource's rows.
fhir_search_token = Table(
    "fhir_search_token",
    metadata,
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(512), nullable=True),
    Column("code", String(512), nullable=False),
    Index(None, "resource_type", "param", "code", "system", "resource_id"),
    Index(None, "resource_type", "resource_id", "param"),
)

# Starts-with search is a range scan [v, v + U+10FFFF) on the value index, which is exact only under
# byte-order collation; a production PostgreSQL created with a locale collation would sort otherwise.
SearchString = String(255).with_variant(String(255, collation="C"), "postgresql")

fhir_search_string = Table(
    "fhir_search_string",
    metadata,
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", SearchString, nullable=False),  # casefolded, accents removed
    Column("exact", String(255), nullable=False),  # as written, for :exact
    Index(None, "resource_type", "param", "value", "resource_id"),
    Index(None, "resource_type", "resource_id", "param"),
)

fhir_search_date = Table(
    "fhir_search_date",
    metadata,
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("low", UtcDateTime(), nullable=False),
    Column("high", UtcDateTime(), nullable=False),
    Index(None, "resource_type", "param", "low", "high"),
    Index(None, "resource_type", "resource_id", "param"),
)

fhir_search_reference = Table(
    "fhir_search_reference",
    metadata,
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=False),
    Index(None, "resource_type", "param", "target_id", "target_type", "resource_id"),
    Index(None, "resource_type", "resource_id", "param"),
)

# Type-level and system-level history page through the change feed newest first.
change_feed_by_type = Index(
    "ix_change_feed_resource_type_seq", change_feed.c.resource_type, change_feed.c.seq
)

# --- Treatment-summary delivery (summaries for referring physicians) --------------------------------------

SUMMARY_DELIVERY_STATES = ("due", "prepared", "sent", "dead", "skipped")

# The summary ledger: one row per trigger (state due), then per document version prepared for a referrer.
# A document set is one (patient, referrer, period start): its versions 1, 2, ... each replace the one before
# (`replaces_pk`). `payload` holds the requests to send, built once; the transport moves prepared -> sent or
# dead. The unique (set_id, version) keeps two preparers from writing the same version twice.
summary_delivery = Table(
    "summary_delivery",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),
    Column("referrer", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("set_id", String(64), nullable=True),
    Column("version", Integer, nullable=True),
    Column("period_start", Date, nullable=True),
    Column("period_end", Date, nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("document_id", String(64), nullable=True),
    Column("replaces_pk", BigId, nullable=True),
    Column("channel", String(16), nullable=True),
    Column("payload", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("prepared_at", UtcDateTime(), nullable=True),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("detail", Text, nullable=True),
    UniqueConstraint("set_id", "version"),
    CheckConstraint("state IN ('due', 'prepared', 'sent', 'dead', 'skipped')", name="state"),
    Index(None, "state", "pk"),
    Index(None, "patient_id", "referrer"),
)

# Where the summary trigger scan stopped in the change feed (one row per scanner name).
summary_cursor = Table(
    "summary_cursor",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# --- Referrer Groups and Bulk Data export ---------------------------------------------------------

# The referrer and patient each current referral names, so intake can rebuild a referrer's Group
# (integration/ingest/groups.py) with one indexed lookup instead of reading every referral.
referral_link = Table(
    "referral_link",
    metadata,
    Column("referral_id", String(128), primary_key=True),
    Column("practitioner_id", String(128), nullable=False),
    Column("patient_id", String(128), nullable=False),
    Index(None, "practitioner_id"),
)

EXPORT_STATUSES = ("queued", "running", "complete", "failed", "cancelled")

# Bulk Data $export jobs (integration/bulk/). The snapshot is transaction_time: intake stamps its
# writes under the serialized-writer lock, so every change feed row up to seq_high was recorded at
# or before it, and every later one strictly after it.
export_job = Table(
    "export_job",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("group_id", String(64), nullable=True),
    Column("scope_group_id", String(64), nullable=True),
    Column("types", Text, nullable=False),
    Column("since", UtcDateTime(), nullable=True),
    Column("output_format", String(40), nullable=False),
    Column("request_url", Text, nullable=False),
    Column("transaction_time", UtcDateTime(), nullable=False),
    Column("seq_high", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(128), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("progress", String(100), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    CheckConstraint("kind IN ('system', 'patient', 'group')", name="kind"),
    CheckConstraint("status IN ('queued', 'running', 'complete', 'failed', 'cancelled')", name="status"),
    Index(None, "client_id", "status"),
    Index(None, "status", "lease_until"),
)

# The files of a finished export job, in manifest order; the bytes live under
# export_dir/<job id>/attempt-<hex>/, the attempt named in export_job.worker.
export_file = Table(
    "export_file",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    ForeignKeyConstraint(["job_id"], ["export_job.id"], ondelete="CASCADE"),
    CheckConstraint("kind IN ('output', 'error', 'deleted')", name="kind"),
)


# --- Sync to external EHRs (integration/sync): per-destination state, outbox, lanes and runs --------

# One row per destination: change-feed cursor, pause switch, circuit breaker, what its server can do.
sync_destination = Table(
    "sync_destination",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("cursor_seq", BigInteger, nullable=False, default=0),
    Column("paused", Boolean, nullable=False, default=False),
    Column("breaker_state", String(16), nullable=False, default="closed"),
    Column("breaker_failures", Integer, nullable=False, default=0),
    Column("breaker_opened_at", UtcDateTime(), nullable=True),
    Column("capabilities", Text, nullable=True),
    Column("capabilities_at", UtcDateTime(), nullable=True),
    Column("last_success_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# What is to be delivered, one row per write (a resource version, or any other request such as a
# summary document POST). `lane` keeps order: a patient's rows go out in pk order, one lane at a time.
sync_outbox = Table(
    "sync_outbox",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("destination", String(64), nullable=False),
    Column("lane", String(160), nullable=False),
    Column("dedupe_key", String(300), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("resource_type", String(64), nullable=True),
    Column("resource_id", String(64), nullable=True),
    Column("version_id", Integer, nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("method", String(8), nullable=True),
    Column("path", String(2000), nullable=True),
    Column("content_type", String(100), nullable=True),
    Column("body", Text, nullable=True),
    Column("headers", Text, nullable=True),
    Column("patient_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("response", Text, nullable=True),
    Column("run_id", String(32), nullable=True),
    UniqueConstraint("destination", "dedupe_key"),
    CheckConstraint("kind IN ('resource', 'request')", name="kind"),
    CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status"),
    Index(None, "destination", "status", "pk"),
    Index(None, "destination", "lane", "pk"),
)

# The lease on a lane: only its holder delivers the lane's rows, so order holds across workers.
# `held_until`: a write of the lane waits for a retry (backoff, Retry-After); nothing of the lane is
# due before then, not even changes queued behind it later.
sync_lane = Table(
    "sync_lane",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("lane", String(160), primary_key=True),
    Column("holder", String(128), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("held_until", UtcDateTime(), nullable=True),
)

# Sync runs (scheduled or triggered by an admin). `active_destination` is set only while running:
# its unique constraint is what makes a second trigger return the running run instead.
sync_run = Table(
    "sync_run",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("destination", String(64), nullable=False),
    Column("active_destination", String(80), nullable=True, unique=True),  # name, or name + "~pull"
    Column("state", String(16), nullable=False),
    Column("options", Text, nullable=False),
    Column("counts", Text, nullable=False),
    Column("errors", Text, nullable=False),
    Column("triggered_by", String(100), nullable=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    CheckConstraint("state IN ('running', 'done', 'failed', 'abandoned')", name="state"),
    Index(None, "destination", "started_at"),
)

# --- Treatment-summary ledger: one open trigger per pair ------------------------------------------

# At most one `due` row per (patient, referrer): concurrent triggers (scan, digest, admin) insert with
# ON CONFLICT against this partial index and merge their reasons into the row that won.
summary_delivery_one_due = Index(
    "uq_summary_delivery_due_pair",
    summary_delivery.c.patient_id,
    summary_delivery.c.referrer,
    unique=True,
    sqlite_where=summary_delivery.c.state == "due",
    postgresql_where=summary_delivery.c.state == "due",
)

# Referrer summary transport (migration 0009): when a prepared version was handed to the outbox, and the
# name of the signer an outbox request is signed with at send time (secrets stay in the environment).
summary_delivery.append_column(Column("queued_at", UtcDateTime(), nullable=True))
sync_outbox.append_column(Column("signer", String(32), nullable=True))

# --- Pull from EHRs (integration/sync/pull.py): watermarks and versions already applied ------------

# Per destination and pulled type: the `_lastUpdated` watermark (moved only after what was read up to
# it is stored) and the search mode the server's CapabilityStatement allowed last time.
sync_pull_state = Table(
    "sync_pull_state",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("watermark", UtcDateTime(), nullable=True),
    Column("mode", String(16), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The last version (versionId, else meta.lastUpdated) of each remote resource a pull applied or
# rejected, so the overlap window never applies the same version twice.
sync_pull_seen = Table(
    "sync_pull_seen",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("remote_id", String(64), primary_key=True),
    Column("version_key", String(100), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("seen_at", UtcDateTime(), nullable=False),
)

# --- EHR patient links (integration/sync/patient_links.py) -----------------------------------------

# Which EHR Patient (by its id on that destination) is which clinic patient (MRN). Made on the first
# pulled Patient that carries a known clinic MRN; afterwards only that EHR Patient may update that
# patient's demographics, and it may not claim another MRN (both unique per destination).
ehr_patient_link = Table(
    "ehr_patient_link",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("ehr_patient_id", String(64), nullable=False),
    Column("linked_at", UtcDateTime(), nullable=False),
    UniqueConstraint("destination", "ehr_patient_id"),
)

# --- Admin browser sessions (integration/auth/admin_session.py) ----------------------------------

# One row per browser login of an admin, by SHA-256 of the session id only (the cookie holds the id).
# A session lives while its API token lives: every request joins `api_token` and checks revoked_at,
# and `tokens revoke` also revokes the token's sessions. Idle timeout is judged from last_seen_at.
admin_session = Table(
    "admin_session",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("token_pk", BigId, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    ForeignKeyConstraint(["token_pk"], ["api_token.pk"]),
    Index(None, "token_pk"),
    Index(None, "expires_at"),
)

# Failed admin browser logins, per client address, kept only for the counting window: what the login
# rate limit counts (the audit log has every attempt too, but counting there would scan all traffic).
admin_login_failure = Table(
    "admin_login_failure",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("remote_addr", String(64), nullable=False),
    Column("failed_at", UtcDateTime(), nullable=False),
    Index(None, "remote_addr", "failed_at"),
    Index(None, "failed_at"),
)
