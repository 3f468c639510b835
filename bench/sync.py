"""Sync push throughput to a fast local receiver beside the receiver's floor, and the cost of a no-change run.

Push: synthetic sessions are stored through intake, then one sync run (what the scheduler does:
direct delivery from the change feed, then the outbox path for the rest) sends every resource
version as transaction Bundles to a minimal FHIR receiver in its own process (it parses each Bundle
and answers 200 per entry). The floor posts the same Bundles, built beforehand from the stored
bytes, straight at the same receiver with a bare requests session: the ratio shows what reading the
feed and recording outcomes cost on top of HTTP. A second line gives the outbox path alone (feed
advance, claim, send, record), as runs of one patient and full re-offers take it. The push runs on
SQLite, then on PostgreSQL when it is reachable (schema `BENCH_PG_SCHEMA`); `BENCH_SYNC_PUSH_ONLY=1`
skips the no-change run below.

No-change run: a destination whose cursor is at the end of a change feed of N entries, with N
delivered outbox rows; a whole scheduled run (start, direct delivery, feed, outbox delivery,
finish) finds nothing to send. Invariant 2 says its cost must not grow with N (target: within 1.2x
between 10k and 1M). `BENCH_SYNC_LARGE` changes the large N.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import requests
from sqlalchemy import insert, select

from bench.harness import free_port, fresh_postgres, fresh_sqlite, row, timed
from integration.ingest import synthetic
from integration.ingest.resources import mapping_context
from integration.ingest.service import COLLECTIONS, ingest
from integration.settings import Settings
from integration.store.db import Database, make_engine
from integration.store.schema import change_feed, fhir_resource_version, sync_outbox
from integration.sync import bundle, service
from integration.sync.destinations import parse
from integration.sync.engine import DeliveryEngine
from integration.sync.feed import advance
from integration.sync.state import StateRepository

BATCH = 200
LARGE = int(os.environ.get("BENCH_SYNC_LARGE", "1000000"))


def _receiver(port: int) -> None:
    import logging

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        entries = orjson.loads(request.get_data()).get("entry", [])
        body = {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "200 OK"}} for _ in entries],
        }
        return Response(orjson.dumps(body), content_type="application/fhir+json")(environ, start_response)

    make_server("127.0.0.1", port, app).serve_forever()


def _destination(url: str, name: str = "bench") -> Any:
    return parse(
        {
            "destination": [
                {
                    "name": name,
                    "kind": "ehr",
                    "base_url": url,
                    "auth": {"type": "none"},
                    "schedule": {"every_seconds": 60},
                    "write_mode": "transaction",
                    "batch_size": BATCH,
                }
            ]
        }
    )[0]


def _store(db: Database, settings: Settings) -> None:
    data = synthetic.batch(seed=7, n_patients=20, sessions_per_patient=5)
    pairs = [(kind, r) for collection, kind in COLLECTIONS.items() for r in data.get(collection, [])]
    ingest(db, pairs, ctx=mapping_context(settings), source="api")


def _bundles(db: Database) -> list[bytes]:
    v = fhir_resource_version.c
    with db.reader() as conn:
        rows = conn.execute(select(v.resource_type, v.id, v.content).order_by(v.resource_type, v.id)).all()
    writes = [bundle.EntryWrite(r.resource_type, r.id, r.content) for r in rows]
    return [
        bundle.build(writes[i : i + BATCH], "transaction", "http://x/fhir", False)
        for i in range(0, len(writes), BATCH)
    ]


def push(tmp: Path) -> None:
    _push(fresh_sqlite(tmp), "SQLite")
    pg = fresh_postgres()
    if pg is not None:
        _push(pg, "PostgreSQL")


def _push(db_url: str, label: str) -> None:
    port = free_port()
    proc = multiprocessing.get_context("fork").Process(target=_receiver, args=(port,), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}/fhir"
    try:
        for _ in range(100):
            try:
                requests.post(url, data=b'{"entry": []}', timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.05)
        settings = Settings.load(environ={}, database_url=db_url, log_level="WARNING")
        db = Database(make_engine(db_url))
        _store(db, settings)
        bundles = _bundles(db)
        total = sum(len(orjson.loads(b)["entry"]) for b in bundles)
        session = requests.Session()
        floor = timed(lambda: [session.post(url, data=b, timeout=30) for b in bundles])
        counts: dict[str, int] = {}

        def run() -> None:  # what a scheduled run does: direct from the feed, then the outbox path
            destination = _destination(url)
            started, _created = service.start(db, settings, destination, {}, "bench")
            engine = DeliveryEngine(db, settings, destination)
            counts.update(service.execute(db, settings, destination, started["run_id"], {}, engine).as_dict())

        def outbox_only() -> None:  # the outbox path alone (runs of one patient, full re-offers)
            destination = _destination(url, "bench-outbox")
            advance(db, destination)
            counts.update(DeliveryEngine(db, settings, destination).deliver().as_dict())

        seconds = timed(run)
        assert counts["sent"] == total, counts
        outbox_seconds = timed(outbox_only)
        assert counts["sent"] == total, counts
        row(f"receiver floor: bare client posting bundles ({label})", total / floor, "resources/s")
        row(
            f"sync push: a run, feed -> send -> record ({label})",
            total / seconds,
            "resources/s",
            f"({100 * floor / seconds:.0f}% of floor, {total} resources; target >= 80%: "
            f"{'met' if floor / seconds >= 0.8 else 'MISSED'})",
        )
        row(
            f"  outbox path alone, advance + deliver ({label})",
            total / outbox_seconds,
            "resources/s",
            f"({100 * floor / outbox_seconds:.0f}% of floor)",
        )
        db.engine.dispose()
    finally:
        proc.terminate()
        proc.join(timeout=5)


def _noop_store(tmp: Path, size: int) -> tuple[Database, Settings]:
    db_url = fresh_sqlite(tmp)
    settings = Settings.load(environ={}, database_url=db_url, log_level="WARNING")
    db = Database(make_engine(db_url))
    now = datetime.now(UTC)
    chunk = 50_000
    with db.writer() as conn:
        for start in range(0, size, chunk):
            ids = range(start, min(start + chunk, size))
            conn.execute(
                insert(change_feed),
                [
                    {
                        "resource_type": "Observation",
                        "resource_id": f"o{i}",
                        "version_id": 1,
                        "patient_id": f"p{i % 1000}",
                        "deleted": False,
                        "recorded_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(sync_outbox),
                [
                    {
                        "destination": "bench",
                        "lane": f"p{i % 1000}",
                        "dedupe_key": f"Observation/o{i}/_history/1",
                        "kind": "resource",
                        "resource_type": "Observation",
                        "resource_id": f"o{i}",
                        "version_id": 1,
                        "deleted": False,
                        "patient_id": f"p{i % 1000}",
                        "status": "sent",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
        StateRepository(conn).set_cursor("bench", size)
    return db, settings


def noop(tmp: Path) -> None:
    medians = []
    for size in (10_000, LARGE):
        db, settings = _noop_store(tmp, size)
        destination = _destination("http://127.0.0.1:9/fhir")  # never contacted: nothing to send
        engine = DeliveryEngine(db, settings, destination)
        times = []
        for _ in range(30):
            started = time.perf_counter()
            run, _created = service.start(db, settings, destination, {}, "bench")
            assert service.execute(db, settings, destination, run["run_id"], {}, engine).sent == 0
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
        row(f"no-change sync run, {size:,} stored versions (SQLite)", medians[-1] * 1e6, "us/run")
        db.engine.dispose()
    print(f"  {'ratio large/small (target <= 1.2)':<52} {medians[1] / medians[0]:>12.2f}")


def main() -> None:
    print("sync")
    with tempfile.TemporaryDirectory() as tmp:
        push(Path(tmp))
        if os.environ.get("BENCH_SYNC_PUSH_ONLY") != "1":
            noop(Path(tmp))


if __name__ == "__main__":
    main()
