"""Real process kills of a delivery worker, on both databases (issue 5 item 8).

The worker runs in its own process against the shared database and a real receiver on 127.0.0.1; the
receiver holds one write request open while the test SIGKILLs the worker, then either commits it (the
worker died after sending, before recording the result) or drops it unread (the worker died after
claiming, before anything was applied). A fresh worker then finishes the work: the receiver ends up
holding every current resource version exactly once, nothing is left pending and nothing is dead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from integration.app import create_app
from integration.settings import Settings
from integration.store.db import Database
from integration.store.schema import sync_outbox, sync_run
from tests.sync.conftest import assert_mirrors, current, load
from tests.sync.receiver import Hold, Receiver

ROOT = Path(__file__).resolve().parents[2]
LEASE = 1.0  # the workers' lane lease, seconds
STALE = 3  # setting sync_stale_run_seconds: a run without a heartbeat this long is dead (above 2 x LEASE)
WAIT = 20.0  # bound on every wait

TOML = """
[[destination]]
name = "crash-ehr"
kind = "ehr"
base_url = "{url}"
write_mode = "transaction"
batch_size = 4
[destination.auth]
type = "none"
[destination.schedule]
every_seconds = 3600
[destination.retry]
base_seconds = 0.05
max_seconds = 0.2
max_attempts = 5
[destination.timeouts]
connect_seconds = 2
read_seconds = 25
"""


@pytest.fixture
def crash_env(database_url, tmp_path, receiver):
    path = tmp_path / "destinations.toml"
    path.write_text(TOML.format(url=receiver.url))
    settings = Settings.load(
        environ={}, database_url=database_url, log_level="WARNING", destinations_file=str(path)
    )
    app = create_app(settings)
    db = app.extensions["horizon.db"]
    load(db, app.extensions["horizon.mapping"], patients=3)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HORIZON_DESTINATIONS": str(path),
        "HORIZON_LOG_LEVEL": "WARNING",
        "HORIZON_SCHEDULER": "false",
        "HORIZON_SYNC_STALE_RUN_SECONDS": str(STALE),
    }
    yield db, env
    db.engine.dispose()


def worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sync.crash_worker", "crash-ehr", str(LEASE)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_while_held(env: dict[str, str], hold: Hold, ready: Callable[[], bool] = lambda: True) -> None:
    """SIGKILL the worker while the receiver holds a write open, once `ready` holds."""
    proc = worker(env)
    try:
        if not hold.arrived.wait(WAIT) or not wait_for(ready):
            proc.kill()
            out, err = proc.communicate(timeout=WAIT)
            pytest.fail(f"the held request never arrived: {out} {err[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=WAIT) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=WAIT)


def finish(env: dict[str, str]) -> dict[str, Any]:
    time.sleep(STALE + 0.5)  # its heartbeat is older than the setting: abandoned; its lanes are free
    proc = worker(env)
    out, err = proc.communicate(timeout=WAIT * 2)
    assert proc.returncode == 0, err[-3000:]
    return orjson.loads(out.strip().splitlines()[-1])


def outbox_states(db: Database) -> dict[str, int]:
    t = sync_outbox.c
    with db.reader() as conn:
        query = select(t.status, func.count()).where(t.destination == "crash-ehr").group_by(t.status)
        return {status: n for status, n in conn.execute(query)}


def sent_keys(db: Database) -> set[str]:
    t = sync_outbox.c
    with db.reader() as conn:
        query = select(t.dedupe_key).where(t.destination == "crash-ehr", t.status == "sent")
        return set(conn.execute(query).scalars())


def done_since(db: Database, moment: datetime) -> int:
    """How many runs started after `moment` have finished."""
    t = sync_run.c
    with db.reader() as conn:
        return int(
            conn.execute(select(func.count()).where(t.started_at > moment, t.state == "done")).scalar_one()
        )


def run_states(db: Database) -> list[str]:
    with db.reader() as conn:
        return sorted(conn.execute(select(sync_run.c.state)).scalars())


def assert_delivered_once(db: Database, receiver: Receiver, run: dict[str, Any]) -> None:
    live = sum(1 for _v, deleted in current(db).values() if not deleted)
    assert run["created"] and run["state"] == "done" and run["counts"]["dead"] == 0, run
    assert outbox_states(db) == {"sent": live}  # nothing pending, nothing dead
    assert_mirrors(receiver, db)  # every current version held, each version once
    assert len(receiver.store) == live
    assert run_states(db) == ["abandoned", "done"]  # the killed run, then the one that finished


def test_killed_after_send_before_recording(crash_env, receiver):
    db, env = crash_env
    hold = receiver.hold(2)  # the first batch is recorded; the second is in flight when the worker dies
    # The first batch's outcome is recorded while the second is in flight (and a third is read).
    kill_while_held(env, hold, ready=lambda: outbox_states(db).get("sent", 0) > 0)
    hold.commit = True
    hold.release.set()
    assert hold.finished.wait(WAIT)
    assert hold.writes  # the receiver applied the batch whose answer nobody read
    recorded = sent_keys(db)  # what the dead worker recorded as sent
    assert recorded and not {key(w) for w in hold.writes} & recorded  # none of the held batch
    run = finish(env)
    assert_delivered_once(db, receiver, run)
    applied = Counter(receiver.writes)
    # The unacknowledged batch was sent again (with any batch sent before it in the same group, whose
    # outcomes are recorded together); its PUTs were idempotent; nothing recorded as sent went again.
    twice = {w for w, n in applied.items() if n > 1}
    assert set(hold.writes) <= twice and not {key(w) for w in twice} & recorded
    assert max(applied.values()) == 2


def key(write: tuple[str, str, str | None]) -> str:
    """The outbox dedupe key of a write the receiver applied."""
    return f"{write[1]}/_history/{write[2]}"


def test_killed_after_claim_before_anything_applied(crash_env, receiver):
    db, env = crash_env
    hold = receiver.hold(1)  # the worker has claimed its first lanes; the receiver will drop the request
    kill_while_held(env, hold)
    hold.release.set()
    assert hold.finished.wait(WAIT)
    assert receiver.writes == [] and receiver.store == {}
    assert not sent_keys(db)  # claimed from the outbox or read from the feed; nothing recorded as sent
    run = finish(env)
    assert_delivered_once(db, receiver, run)
    assert max(Counter(receiver.writes).values()) == 1  # nothing applied twice


def test_two_scheduler_processes_run_each_sync_once(crash_env, receiver, database_url):
    """Two scheduler processes started at once: one leader runs every tick; each run happens once."""
    db, env = crash_env
    env = {**env, "HORIZON_SCHEDULER_LEASE_SECONDS": "8"}  # long: under CI load a short one fails over
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.sync.scheduler_process", "0.3"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        assert wait_for(lambda: len(run_states(db)) >= 2), run_states(db)
        app = create_app(Settings.load(environ={}, database_url=database_url, log_level="WARNING"))
        load(db, app.extensions["horizon.mapping"], patients=1, seed=11)  # new work for a later run
        loaded = datetime.now(UTC)  # a run started after this saw the new work (one started during the
        # load may have read the feed before the load committed, and finished with nothing pending)
        assert wait_for(
            lambda: (
                outbox_states(db).get("pending", 0) == 0
                and len(run_states(db)) >= 4
                and done_since(db, loaded) >= 1
            )
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=WAIT)
            assert proc.returncode == 0, err[-3000:]
            reports.append(orjson.loads(out.strip().splitlines()[-1]))
    ran = [r["runs"].get("sync:crash-ehr", 0) for r in reports]
    assert min(ran) == 0 and max(ran) >= 4  # one leader ran every tick
    states = run_states(db)
    assert states == ["done"] * len(states) and len(states) == sum(ran)  # each tick ran once, recorded once
    assert set(outbox_states(db)) == {"sent"}  # every version's row sent; none pending, none dead
    assert max(Counter(receiver.writes).values()) == 1  # no write sent twice
    assert_mirrors(receiver, db)


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
