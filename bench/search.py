"""Search latency at N and 10N stored resources: an index-backed search must not grow with the store.

Workload: Observations of many patients (50 each: five LOINC codes, ten readings a code, a day
apart), written through ResourceRepository.write so the search index is filled as intake fills it.
The store grows by adding patients, so the typical query `Observation?patient=X&code=Y&date=ge...`
matches the same rows at both sizes; it runs through the same parser and SQL the API uses
(`_include=Observation:patient` too), with the Group compartment off.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench.harness import fresh_postgres, fresh_sqlite, row, timed
from integration.fhir_api.compartment import UNRESTRICTED
from integration.fhir_api.search_query import parse
from integration.fhir_api.search_sql import page_query
from integration.store.db import Database, make_engine
from integration.store.resources import ResourceRepository, ResourceWrite

PER_PATIENT = 50
CODES = ("8867-4", "8480-6", "8462-4", "59408-5", "9279-1")
N = 5_000
REPEAT = 200
START = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(db: Database, first: int, last: int) -> None:
    """Patients first..last-1 with their Observations, one transaction per 100 patients."""
    for chunk in range(first, last, 100):
        writes = []
        for p in range(chunk, min(chunk + 100, last)):
            pid = f"p{p:06d}"
            body = {"resourceType": "Patient", "id": pid, "name": [{"family": f"F{p}"}]}
            writes.append(ResourceWrite("Patient", pid, 1, "h", orjson.dumps(body).decode(), pid))
            for k in range(PER_PATIENT):
                oid = f"o{p:06d}-{k:02d}"
                body = {
                    "resourceType": "Observation",
                    "id": oid,
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": CODES[k % len(CODES)]}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": (START + timedelta(days=k // len(CODES))).isoformat(),
                    "valueQuantity": {"value": 70 + k},
                }
                writes.append(ResourceWrite("Observation", oid, 1, "h", orjson.dumps(body).decode(), pid))
        with db.serialized_writer() as conn:
            ResourceRepository(conn).write(writes, now=datetime.now(UTC))


def _search_seconds(db: Database, patients: int) -> tuple[float, int]:
    pid = f"p{patients // 2:06d}"
    pairs = [
        ("patient", pid),
        ("code", f"http://loinc.org|{CODES[0]}"),
        ("date", "ge2026-01-03"),
        ("_include", "Observation:patient"),
    ]
    found = 0

    def run() -> None:
        nonlocal found
        with db.engine.connect() as conn:
            for _ in range(REPEAT):
                stmt, _ = page_query(parse("Observation", pairs, strict=True), UNRESTRICTED)
                found = len(conn.execute(stmt).all())

    return timed(run) / REPEAT, found


def _analyze(db: Database) -> None:
    """Planner statistics as autovacuum would have them (PostgreSQL; SQLite plans without)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def _measure(label: str, url: str) -> None:
    db = Database(make_engine(url))
    try:
        patients_n = N // (PER_PATIENT + 1)
        _fill(db, 0, patients_n)
        _analyze(db)
        small, matches = _search_seconds(db, patients_n)
        _fill(db, patients_n, patients_n * 10)
        _analyze(db)
        large, matches_large = _search_seconds(db, patients_n * 10)
    finally:
        db.engine.dispose()
    assert matches == matches_large, "the query must match the same rows at both sizes"
    row(f"{label}: search at {N:,} resources ({matches} matches)", small * 1e6, "us/search")
    row(
        f"{label}: search at {N * 10:,} resources",
        large * 1e6,
        "us/search",
        f"x{large / small:.2f} for 10x data",
    )


def main() -> None:
    print("FHIR search (Observation?patient&code&date=ge, parser + SQL, index-backed)")
    with tempfile.TemporaryDirectory() as tmp:
        _measure("SQLite", fresh_sqlite(Path(tmp)))
    url = fresh_postgres()
    if url is not None:
        _measure("PostgreSQL", url)


if __name__ == "__main__":
    main()
