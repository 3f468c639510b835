"""One scheduler leader at a time across processes; a job runs only on the leader."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from integration.jobs import JobSpec
from integration.scheduler import LEASE_NAME, SchedulerService
from integration.store.schema import lease

ROOT = Path(__file__).resolve().parent.parent


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_two_schedulers_elect_one_leader_and_fail_over(app):
    app.config["HORIZON_SETTINGS"] = replace(app.config["HORIZON_SETTINGS"], scheduler_lease_seconds=1)
    ticks: list[str] = []
    lock = threading.Lock()

    def make(name):
        def tick(_app):
            with lock:
                ticks.append(name)
            return {"ok": True}

        return [JobSpec("tick", tick, "interval", {"seconds": 0.1})]

    a = SchedulerService(app, jobs=make("a"))
    b = SchedulerService(app, jobs=make("b"))
    a.start()
    assert _wait(lambda: a.is_leader)
    b.start()
    assert _wait(lambda: len(ticks) >= 5)
    assert not b.is_leader and set(ticks) == {"a"}
    a.stop()
    assert _wait(lambda: b.is_leader, timeout=5)
    assert _wait(lambda: "b" in ticks)
    b.stop()
    assert not a.is_leader and not b.is_leader


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_run_entry_point_serves_and_keeps_one_scheduler(tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the started-twice check runs once, on the default SQLite store")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HORIZON_SCHEDULER_LEASE_SECONDS": "2",
        "HORIZON_LOG_LEVEL": "WARNING",
    }
    env.pop("HORIZON_CONFIG", None)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "integration.serve"],
            cwd=ROOT,
            env={**env, "PORT": str(p)},
            stderr=(tmp_path / f"serve-{p}.log").open("wb"),
        )
        for p in ports
    ]
    try:
        for port in ports:
            assert _wait(lambda port=port: _ready(port), timeout=30), "service did not become ready"
        from integration.store.db import make_engine

        engine = make_engine(database_url)

        def holder():
            with engine.connect() as conn:
                return conn.execute(select(lease.c.holder).where(lease.c.name == LEASE_NAME)).scalar()

        assert _wait(lambda: holder() is not None)
        pids = {str(p.pid) for p in procs}
        assert holder().split(":")[1] in pids
        leader = next(p for p in procs if str(p.pid) == holder().split(":")[1])
        leader.send_signal(signal.SIGTERM)
        assert leader.wait(timeout=15) == 0
        survivor = next(p for p in procs if p is not leader)
        assert _wait(lambda: (holder() or "::").split(":")[1] == str(survivor.pid), timeout=10)
        engine.dispose()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=15)


def _ready(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
