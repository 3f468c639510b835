"""Bulk $export throughput and memory, and Patient/$everything latency, beside the floor.

Workload: BENCH_EXPORT_PATIENTS synthetic patients (default 2,000) with a session each (~90 FHIR
resources a patient), stored through the real intake. Export: kick-off, polling and download of a
system-level $export against the real service process over HTTP with a SMART token (audit on).
Floor: the same stored JSON read straight from the database and written to one file. Memory: the
Python heap peak (tracemalloc) of the export worker exporting everything at a quarter of the data
and at all of it: a flat figure while the data grows 4x is what "constant memory" means.
$everything: p50/p95 of first pages (_count=100) for random patients, one keep-alive client.
On SQLite and on PostgreSQL (`BENCH_EXPORT_DATABASES`, default both; PostgreSQL from
BENCH_DATABASE_URL in its own BENCH_PG_SCHEMA, skipped with the reason when unreachable).
"""

from __future__ import annotations

import os
import random
import secrets
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select

from bench.harness import fresh_postgres, fresh_sqlite, row, server, timed
from integration.app import create_app
from integration.auth.smart_clients import SmartClientRepository
from integration.fhir_api.capability import SERVED_TYPES
from integration.fhir_api.export_runner import run_job
from integration.ingest import synthetic
from integration.ingest.service import ingest
from integration.settings import Settings
from integration.store.exports import ExportJobRepository
from integration.store.schema import fhir_resource

N_PATIENTS = int(os.environ.get("BENCH_EXPORT_PATIENTS", "2000"))
DATABASES = os.environ.get("BENCH_EXPORT_DATABASES", "sqlite,postgresql").split(",")
CHUNK = 100
DEFAULT_BASE = "http://127.0.0.1:8000"


def _load(app: object, data: dict[str, list[dict]], start: int, end: int) -> int:
    """Store patients [start, end) of the workload through the intake; returns the resources stored."""
    db, ctx = app.extensions["horizon.db"], app.extensions["horizon.mapping"]  # type: ignore[attr-defined]
    if start == 0:
        ingest(db, [("practitioner", p) for p in data["practitioners"]], ctx=ctx, source="api")
    for first in range(start, end, CHUNK):
        ids = {p["id"] for p in data["patients"][first : min(first + CHUNK, end)]}
        pairs = [("patient", p) for p in data["patients"] if p["id"] in ids]
        pairs += [("referral", r) for r in data["referrals"] if r["patient_id"] in ids]
        pairs += [("session", s) for s in data["sessions"] if s["patient_id"] in ids]
        ingest(db, pairs, ctx=ctx, source="api")
    with db.reader() as conn:
        return len(conn.execute(select(fhir_resource.c.id).where(fhir_resource.c.deleted.is_(False))).all())


def _floor(app: object, out: Path) -> float:
    db = app.extensions["horizon.db"]  # type: ignore[attr-defined]
    query = select(fhir_resource.c.content).where(fhir_resource.c.deleted.is_(False))

    def copy() -> None:
        with (
            db.engine.connect().execution_options(stream_results=True, yield_per=2000) as conn,
            out.open("wb") as f,
        ):
            for (content,) in conn.execute(query):
                f.write(content.encode())
                f.write(b"\n")

    return timed(copy)


def _token(app: object, base: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench"}
    with app.extensions["horizon.db"].writer() as conn:  # type: ignore[attr-defined]
        client_id = SmartClientRepository(conn).register(
            f"bench-{secrets.token_hex(4)}", "system/*.rs", jwks=f'{{"keys": [{_json(jwk)}]}}'
        )
    claims = {
        "iss": client_id,
        "sub": client_id,
        # What the service names as its token endpoint (its configured public URL), as clients discover it.
        "aud": requests.get(f"{base}/.well-known/smart-configuration", timeout=30).json()["token_endpoint"],
        "exp": int(time.time()) + 240,
        "jti": secrets.token_hex(16),
    }
    signed = jwt.encode(claims, key, algorithm="RS384", headers={"kid": "bench", "typ": "JWT"})
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
        "scope": "system/*.rs",
    }
    response = requests.post(f"{base}/auth/token", data=form, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def _json(value: object) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _export_over_http(http: requests.Session, base: str) -> tuple[float, float, int, int]:
    """(seconds to a complete manifest, seconds to download, resources, bytes)."""
    start = time.perf_counter()
    kickoff = http.get(f"{base}/fhir/$export", headers={"Prefer": "respond-async"}, timeout=30)
    kickoff.raise_for_status()
    status = kickoff.headers["Content-Location"].replace(DEFAULT_BASE, base)
    while (polled := http.get(status, timeout=30)).status_code == 202:
        time.sleep(0.05)
    polled.raise_for_status()
    ready = time.perf_counter() - start
    manifest = polled.json()
    size = 0
    start = time.perf_counter()
    for entry in manifest["output"]:
        with http.get(entry["url"].replace(DEFAULT_BASE, base), stream=True, timeout=60) as download:
            download.raise_for_status()
            for chunk in download.iter_content(1 << 20):
                size += len(chunk)
    fetched = time.perf_counter() - start
    http.delete(status, timeout=30)
    return ready, fetched, sum(e["count"] for e in manifest["output"]), size


def _everything(http: requests.Session, base: str, patient_ids: list[str], n: int = 200) -> list[float]:
    rng = random.Random(3)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = http.get(
            f"{base}/fhir/Patient/{rng.choice(patient_ids)}/$everything?_count=100", timeout=30
        )
        response.raise_for_status()
        times.append(time.perf_counter() - start)
    return sorted(times)


def _heap_peak(app: object, types: str) -> tuple[int, int]:
    """(resources written, tracemalloc peak bytes) of one in-process export worker run."""
    db = app.extensions["horizon.db"]  # type: ignore[attr-defined]
    job_id = secrets.token_urlsafe(12)
    now = datetime.now(UTC)
    with db.serialized_writer() as conn:
        repo = ExportJobRepository(conn)
        repo.create(
            id=job_id,
            client_id="bench",
            kind="system",
            types=types,
            output_format="ndjson",
            request_url="bench",
            transaction_time=now,
            seq_high=repo.change_feed_high(),
            created_at=now,
            updated_at=now,
        )
    tracemalloc.start()
    try:
        assert run_job(app, job_id, "bench") == "complete"  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with db.reader() as conn:
        count = sum(f.count for f in ExportJobRepository(conn).files(job_id))
    return count, peak


def _measure(label: str, url: str, tmp: Path) -> None:
    exports = tmp / f"exports-{label.lower()}"
    os.environ["HORIZON_EXPORT_DIR"] = str(exports)  # the service process writes its files here
    settings = Settings.load(database_url=url, log_level="WARNING", export_dir=str(exports))
    app = create_app(settings)
    try:
        data = synthetic.batch(seed=2027, n_patients=N_PATIENTS, sessions_per_patient=1)
        every_type = ",".join(SERVED_TYPES)
        loaded_at = time.perf_counter()
        quarter = _load(app, data, 0, N_PATIENTS // 4)
        _, quarter_peak = _heap_peak(app, every_type)
        resources = _load(app, data, N_PATIENTS // 4, N_PATIENTS)
        if app.extensions["horizon.db"].engine.dialect.name == "postgresql":
            with app.extensions["horizon.db"].engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")  # as autovacuum would have by then on a live system
        print(f"  {label}: {resources:,} resources stored in {time.perf_counter() - loaded_at:.0f} s")
        _, full_peak = _heap_peak(app, every_type)
        floor_s = _floor(app, tmp / f"floor-{label.lower()}.ndjson")
        with app.extensions["horizon.db"].reader() as conn:
            patients = list(
                conn.execute(
                    select(fhir_resource.c.id).where(fhir_resource.c.resource_type == "Patient")
                ).scalars()
            )
        with server(url) as base, requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {_token(app, base)}"
            ready, fetched, count, size = _export_over_http(http, base)
            latencies = _everything(http, base, patients)
        row(f"{label} floor: stored JSON from the database to a file", resources / floor_s, "resources/s")
        row(
            f"{label} $export over HTTP: kick-off to complete manifest",
            count / ready,
            "resources/s",
            f"({ready / floor_s:.1f}x the floor's time; target <= 2x)",
        )
        row(
            f"{label} $export download (streamed NDJSON)",
            size / fetched / 1e6,
            "MB/s",
            f"({size / 1e6:.0f} MB)",
        )
        row(f"{label} export worker heap peak, {quarter:,} resources", quarter_peak / 1024, "KiB")
        row(
            f"{label} export worker heap peak, {resources:,} resources",
            full_peak / 1024,
            "KiB",
            "(flat = constant memory)",
        )
        p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
        row(f"{label} $everything first page (_count=100) p50", p50 * 1000, "ms")
        row(f"{label} $everything first page (_count=100) p95", p95 * 1000, "ms")
    finally:
        app.extensions["horizon.db"].engine.dispose()


def main() -> None:
    print(
        f"export: {N_PATIENTS} patients with a session each, real service process, SMART token "
        f"({', '.join(DATABASES)})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in DATABASES:
            _measure("SQLite", fresh_sqlite(Path(tmp)), Path(tmp))
        url = fresh_postgres() if "postgresql" in DATABASES else None
        if url is not None:
            _measure("PostgreSQL", url, Path(tmp))


if __name__ == "__main__":
    main()
