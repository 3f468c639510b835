"""Shared benchmark plumbing: fresh databases, a real server process, timing and printing."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from integration.store import migrate
from integration.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Its own schema per run, so benchmarks run side by side (e.g. on several branches) do not collide.
PG_SCHEMA = os.environ.get("BENCH_PG_SCHEMA", "horizon_bench")


def fresh_sqlite(tmp: Path) -> str:
    url = f"sqlite:///{tmp}/bench-{time.monotonic_ns()}.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def fresh_postgres() -> str | None:
    """A migrated, empty schema on the local PostgreSQL, or None when it is not reachable."""
    try:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
        admin.dispose()
    except Exception as exc:  # the PostgreSQL figures are skipped, and the reason printed
        print(f"  (PostgreSQL not reachable: {type(exc).__name__}; skipping its figures)")
        return None
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"})
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    migrate.upgrade(engine)
    engine.dispose()
    return rendered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(database_url: str, threads: int = 4) -> Iterator[str]:
    """The real service (`python -m integration.serve`, waitress) in its own process."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "HORIZON_SCHEDULER": "false",
        "HORIZON_LOG_LEVEL": "WARNING",
        "HORIZON_WEB_THREADS": str(threads),
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this frame, closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "integration.serve"], cwd=ROOT, env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            log.seek(0)
            raise RuntimeError(f"server did not start: {log.read()[-2000:]!r}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@contextmanager
def gunicorn(database_url: str, workers: int = 2, threads: int = 1) -> Iterator[str]:
    """The service under gunicorn (`gunicorn -w N wsgi:app`) in its own process; yields its base URL.

    threads > 1 selects gunicorn's gthread worker, the one that keeps connections alive.
    """
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HORIZON_SCHEDULER": "false",
        "HORIZON_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    if threads > 1:
        command += ["--threads", str(threads), "--keep-alive", "30"]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this frame, closed in finally
    proc = subprocess.Popen([*command, "wsgi:app"], cwd=ROOT, env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, log)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _wait_ready(base: str, proc: subprocess.Popen, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"server did not start: {log.read()[-2000:]!r}")


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by fn, with the cyclic GC collected and frozen before and paused during the run
    (it otherwise costs up to a third of model throughput)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()
        gc.unfreeze()


def row(label: str, value: float, unit: str, extra: str = "") -> None:
    print(f"  {label:<52} {value:>12,.0f} {unit:<12} {extra}")
