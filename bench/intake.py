"""Intake throughput over real HTTP beside the floor: the same payloads inserted straight into the DB.

Intake validates each record, maps it to FHIR (~85 resources per session), validates those with the
models and stores record, resources and change feed in one transaction; the floor only inserts the
record payloads, so the ratio shows what validation and FHIR mapping cost on top of storage.

Workload: realistic sessions (~15 vital-sign sets, 1-3 medications, 3-4 assessments each) from the
synthetic generator, posted in batches to the real service process. The floor inserts the same
canonical JSON payloads into the same kind of database with the same batching (one transaction
per batch) through SQLAlchemy Core, with no HTTP, no validation and no idempotency lookups.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import requests
from sqlalchemy import func, insert, select

from bench.harness import fresh_postgres, fresh_sqlite, row, server, timed
from integration.ingest import synthetic
from integration.store.db import WRITE, make_engine
from integration.store.schema import change_feed, clinic_record
from integration.store.tokens import TokenRepository

N_PATIENTS = 60
SESSIONS_PER_PATIENT = 10
BATCH_SESSIONS = 100


def _workload() -> tuple[dict[str, list[dict]], list[list[dict]]]:
    data = synthetic.batch(seed=2026, n_patients=N_PATIENTS, sessions_per_patient=SESSIONS_PER_PATIENT)
    sessions = data["sessions"]
    batches = [sessions[i : i + BATCH_SESSIONS] for i in range(0, len(sessions), BATCH_SESSIONS)]
    setup = {k: data[k] for k in ("practitioners", "patients")}
    return setup, batches


def _token(url: str) -> str:
    engine = make_engine(url)
    with engine.execution_options(**WRITE).begin() as conn:
        token = TokenRepository(conn).create(f"bench-{datetime.now(UTC).timestamp()}", "clinic")
    engine.dispose()
    return token


def _resources_written(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(change_feed)).scalar_one()
    engine.dispose()
    return count


def _intake(url: str, setup: dict, batches: list[list[dict]]) -> tuple[float, int]:
    """Seconds to send the sessions, and how many FHIR resource versions they produced."""
    token = _token(url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [orjson.dumps({"sessions": b}) for b in batches]
    with server(url) as base, requests.Session() as http:
        answer = http.post(f"{base}/api/v1/batch", data=orjson.dumps(setup), headers=headers, timeout=120)
        answer.raise_for_status()

        def send_all() -> None:
            for body in bodies:
                response = http.post(f"{base}/api/v1/batch", data=body, headers=headers, timeout=120)
                response.raise_for_status()
                summary = response.json()["summary"]
                if summary["rejected"]:
                    raise RuntimeError(f"benchmark workload rejected: {summary}")

        before = _resources_written(url)
        seconds = timed(send_all)
        return seconds, _resources_written(url) - before


def _floor(url: str, batches: list[list[dict]]) -> float:
    engine = make_engine(url)
    now = datetime.now(UTC)
    prepared = [
        [
            {
                "kind": "session",
                "clinic_id": s["id"],
                "version": 1,
                "content_hash": hashlib.sha256(payload).hexdigest(),
                "payload": payload.decode(),
                "source": "api",
                "received_at": now,
                "request_id": None,
            }
            for s in batch
            for payload in [orjson.dumps(s, option=orjson.OPT_SORT_KEYS)]
        ]
        for batch in batches
    ]

    def insert_all() -> None:
        for rows in prepared:
            with engine.execution_options(**WRITE).begin() as conn:
                conn.execute(insert(clinic_record), rows)

    seconds = timed(insert_all)
    engine.dispose()
    return seconds


def main() -> None:
    setup, batches = _workload()
    n = sum(len(b) for b in batches)
    vitals = sum(len(s.get("vitals", [])) for b in batches for s in b)
    size = sum(len(orjson.dumps(s)) for b in batches for s in b)
    print(
        f"intake: {n} sessions ({vitals / n:.1f} vital sets, {size / n / 1024:.1f} KiB each), "
        f"batches of {BATCH_SESSIONS}, one keep-alive HTTP client"
    )
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("SQLite", fresh_sqlite(Path(tmp)), fresh_sqlite(Path(tmp)))]
        pg_intake = fresh_postgres()
        if pg_intake:
            backends.append(("PostgreSQL", pg_intake, None))
        for name, intake_url, floor_url in backends:
            intake_s, resources = _intake(intake_url, setup, batches)
            if floor_url is None:  # PostgreSQL: reuse the schema for the floor after a fresh start
                floor_url = fresh_postgres()
            assert floor_url is not None
            floor_s = _floor(floor_url, batches)
            row(
                f"{name}: intake over HTTP", n / intake_s, "sessions/s", f"({size / intake_s / 1e6:.1f} MB/s)"
            )
            row(f"{name}: FHIR resources stored by intake", resources / intake_s, "resources/s")
            row(f"{name}: floor, same payloads inserted directly", n / floor_s, "sessions/s")
            ratio = intake_s / floor_s
            print(
                f"  {name}: intake (validate + map + store FHIR) takes {ratio:.1f}x the record-insert floor"
                f" (issue 2 target: within 3x: {'met' if ratio <= 3 else 'MISSED'})"
            )


if __name__ == "__main__":
    main()
