"""FHIR read and search over real HTTP: gunicorn (2 workers), SMART token and audit on, at 10k and 100k.

Workload: patients with 50 vital-sign Observations each (the shape and size intake stores: US Core
profile, identifier, encounter, UCUM quantity, ~0.8 kB), written through ResourceRepository.write in
one transaction per 100 patients, so the search index is filled as intake fills it (intake itself,
mapping and validating ~85 resources per session, would take minutes for 100k). Reads are
`Observation/<id>` over many patients; searches are `Observation?patient=X&category=vital-signs
&_count=40` (40 matches a page). Each is run by one keep-alive client (requests.Session), then by
several threads with a session each, bounded in count and time. The floor beside them is
GET /healthz from the same client: what HTTP alone costs on this machine. requests itself costs
about as much client CPU per request as the server's whole /healthz, on the same 2 cores, so every
figure is then taken again with a lighter keep-alive client (one reused http.client connection per
thread), which shows more of what the server can do; both are printed, each labelled.
Targets (issue 4, 2-core machine, one keep-alive client, token and audit on): reads >= 1,500/s,
searches of 40 matches >= 800/s.

`BENCH_FHIR_SIZES` (e.g. "2000") runs other store sizes; `BENCH_FHIR_SECONDS` bounds each figure;
`BENCH_FHIR_DATABASES` ("sqlite", "postgresql" or both) picks the databases; `BENCH_FHIR_CLIENTS`
("requests", "http.client" or both) the clients.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import orjson
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from bench.harness import fresh_postgres, fresh_sqlite, gunicorn
from integration.auth.smart_clients import SmartClientRepository
from integration.store.db import Database, make_engine
from integration.store.resources import ResourceRepository, ResourceWrite

PER_PATIENT = 50
SIZES = tuple(int(s) for s in os.environ.get("BENCH_FHIR_SIZES", "10000,100000").split(","))
SECONDS = float(os.environ.get("BENCH_FHIR_SECONDS", "4"))
DATABASES = os.environ.get("BENCH_FHIR_DATABASES", "sqlite,postgresql").split(",")
MAX_REQUESTS = 20_000
THREADS = 4
WORKER_THREADS = int(os.environ.get("BENCH_GUNICORN_THREADS", "4"))
TARGETS = {"read": 1500, "search": 800, "floor": 0}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITALS = (("8867-4", "Heart rate", "/min"), ("8480-6", "Systolic blood pressure", "mm[Hg]"))
START = datetime(2026, 1, 5, 9, tzinfo=UTC)
NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def _id(kind: str, n: int, k: int = 0) -> str:
    return str(uuid.uuid5(NS, f"{kind}-{n}-{k}"))


def _patient(p: int) -> dict:
    return {
        "resourceType": "Patient",
        "id": _id("patient", p),
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [{"system": "https://clinic.example.org/fhir/sid/mrn", "value": f"MRN{p:07d}"}],
        "name": [{"family": f"Family{p}", "given": ["Sam"]}],
        "gender": "female",
        "birthDate": "1980-04-02",
    }


def _observation(p: int, k: int) -> dict:
    code, text, unit = VITALS[k % len(VITALS)]
    return {
        "resourceType": "Observation",
        "id": _id("obs", p, k),
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"]},
        "identifier": [{"system": "https://clinic.example.org/fhir/sid/vital", "value": f"S-{p}-{k}"}],
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": text},
        "subject": {"reference": f"Patient/{_id('patient', p)}"},
        "encounter": {"reference": f"Encounter/{_id('encounter', p, k // 10)}"},
        "effectiveDateTime": (START + timedelta(minutes=15 * k)).isoformat(),
        "valueQuantity": {"value": 60 + k, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def fill(db: Database, first: int, last: int) -> None:
    """Patients first..last-1 with their Observations, one transaction per 100 patients."""
    for chunk in range(first, last, 100):
        writes = []
        for p in range(chunk, min(chunk + 100, last)):
            pid = _id("patient", p)
            resources = [_patient(p), *(_observation(p, k) for k in range(PER_PATIENT))]
            writes += [
                ResourceWrite(r["resourceType"], r["id"], 1, "h", orjson.dumps(r).decode(), pid)
                for r in resources
            ]
        with db.serialized_writer() as conn:
            ResourceRepository(conn).write(writes, now=datetime.now(UTC))


def _client(db: Database) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**orjson.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": "bench-1"}
    with db.writer() as conn:
        client_id = SmartClientRepository(conn).register(
            f"bench-{uuid.uuid4().hex[:8]}", "system/*.rs", jwks=orjson.dumps({"keys": [jwk]}).decode()
        )
    return client_id, key


def _token(base: str, client_id: str, key: ec.EllipticCurvePrivateKey) -> str:
    """A SMART access token over HTTP, as an EHR gets one (ES384 client assertion)."""
    aud = requests.get(f"{base}/.well-known/smart-configuration", timeout=10).json()["token_endpoint"]
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 240, "jti": uuid.uuid4().hex}
    signed = jwt.encode(claims, key, algorithm="ES384", headers={"kid": "bench-1", "typ": "JWT"})
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        "scope": "system/*.rs",
    }
    response = requests.post(f"{base}/auth/token", data=form, timeout=10)
    response.raise_for_status()
    return response.json()["access_token"]


class _SessionClient:
    """requests.Session: what a Python EHR integration would use (its own cost is part of the figure)."""

    label = "requests"

    def __init__(self, headers: dict[str, str]) -> None:
        self._session = requests.Session()
        self._session.headers.update(headers)

    def get(self, url: str) -> tuple[int, bytes]:
        response = self._session.get(url, timeout=30)
        return response.status_code, response.content

    def close(self) -> None:
        self._session.close()


class _LightClient:
    """One reused http.client connection: far less client-side Python, so the server's cost shows."""

    label = "http.client"

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers
        self._conn: http.client.HTTPConnection | None = None

    def get(self, url: str) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if self._conn is None:
            self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        path = f"{parts.path}?{parts.query}" if parts.query else parts.path
        self._conn.request("GET", path, headers=self._headers)
        response = self._conn.getresponse()
        body = response.read()
        if response.will_close:
            self._conn.close()
            self._conn = None
        return response.status, body

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _load(
    urls: list[str],
    token: str,
    threads: int,
    check: Callable[[int, bytes], None],
    client: type = _SessionClient,
) -> dict:
    """Each thread walks `urls` from its own offset on one keep-alive connection, until the time is up."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    deadline = [0.0]

    def start_clock() -> None:  # runs once, when every session is warm, before any is released
        deadline[0] = time.perf_counter() + SECONDS

    barrier = threading.Barrier(threads + 1, action=start_clock, timeout=120)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        session = client(headers)
        try:
            check(*session.get(urls[n]))  # warm the connection and the worker
            barrier.wait()
            mine = latencies[n]
            i = n * 7919
            while time.perf_counter() < deadline[0] and len(mine) < MAX_REQUESTS // threads:
                started = time.perf_counter()
                answer = session.get(urls[i % len(urls)])
                mine.append(time.perf_counter() - started)
                check(*answer)
                i += 1
        except BaseException as exc:
            failures.append(exc)
        finally:
            session.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = deadline[0] - SECONDS
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    every = sorted(x for mine in latencies for x in mine)
    return {
        "n": len(every),
        "per_s": len(every) / elapsed,
        "p50": every[len(every) // 2] * 1000,
        "p95": every[int(len(every) * 0.95)] * 1000,
    }


def _read_ok(status: int, body: bytes) -> None:
    if status != 200 or not body.startswith(b'{"resourceType":"Observation"'):
        raise RuntimeError(f"read answered {status}: {body[:200]!r}")


def _floor_ok(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"/healthz answered {status}")


def _search_ok(status: int, body: bytes) -> None:
    bundle = orjson.loads(body) if status == 200 else {}
    matches = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
    if len(matches) != 40:
        raise RuntimeError(f"search answered {status} with {len(matches)} matches")


CLIENTS: tuple[type, ...] = tuple(
    c
    for c in (_SessionClient, _LightClient)
    if c.label in os.environ.get("BENCH_FHIR_CLIENTS", "requests,http.client").split(",")
)


def _print(db_label: str, size: int, kind: str, threads: int, figures: dict, client: type) -> None:
    target = TARGETS[kind]
    verdict = ""
    if kind == "floor":
        verdict = f"(GET /healthz: gunicorn + Flask + {client.label}, no database, no auth)"
    elif threads == 1:
        verdict = f"target >= {target:,}/s: {'met' if figures['per_s'] >= target else 'MISSED'}"
    clients = f"1 {client.label}" if threads == 1 else f"{threads} x {client.label}"
    print(
        f"  {db_label:<10} {size:>7,} {kind:<6} {clients:<16} {figures['per_s']:>8,.0f}/s"
        f"  p50 {figures['p50']:6.2f} ms  p95 {figures['p95']:6.2f} ms  (n={figures['n']:,})  {verdict}"
    )


def _measure(db_label: str, url: str) -> None:
    db = Database(make_engine(url))
    try:
        client_id, key = _client(db)
        patients_done = 0
        for size in SIZES:
            patients = max(1, size // (PER_PATIENT + 1))
            started = time.perf_counter()
            fill(db, patients_done, patients)
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            filled = time.perf_counter() - started
            print(
                f"  {db_label:<10} {size:>7,} stored ({patients:,} patients x {PER_PATIENT + 1}; "
                f"{(patients - patients_done) * (PER_PATIENT + 1) / filled:,.0f} resources/s written)"
            )
            patients_done = patients
            with gunicorn(url, workers=2, threads=WORKER_THREADS) as base:
                token = _token(base, client_id, key)
                reads = [f"{base}/fhir/Observation/{_id('obs', p, p % PER_PATIENT)}" for p in range(patients)]
                searches = [
                    f"{base}/fhir/Observation?patient={_id('patient', p)}&category=vital-signs&_count=40"
                    for p in range(patients)
                ]
                for client in CLIENTS:
                    if size == SIZES[0]:
                        floor = _load([f"{base}/healthz"], token, 1, _floor_ok, client)
                        _print(db_label, size, "floor", 1, floor, client)
                    for kind, urls, check in (("read", reads, _read_ok), ("search", searches, _search_ok)):
                        for threads in (1, THREADS):
                            figures = _load(urls, token, threads, check, client)
                            _print(db_label, size, kind, threads, figures, client)
    finally:
        db.engine.dispose()


def main() -> None:
    print(
        f"FHIR read/search over HTTP (gunicorn -w 2, {WORKER_THREADS} threads each, keep-alive; SMART "
        "token + audit on; store filled through ResourceRepository.write, not intake)"
    )
    if "sqlite" in DATABASES:
        with tempfile.TemporaryDirectory() as tmp:
            _measure("SQLite", fresh_sqlite(Path(tmp)))
    url = fresh_postgres() if "postgresql" in DATABASES else None
    if url is not None:
        _measure("PostgreSQL", url)


if __name__ == "__main__":
    main()
