"""A delivery worker in its own process for crash tests: `python -m tests.sync.crash_worker NAME LEASE`.

The same steps as `flask --app wsgi sync run NAME` (`service.start`, then `service.execute`). Settings
come from the environment (DATABASE_URL, HORIZON_DESTINATIONS, HORIZON_SYNC_STALE_RUN_SECONDS: the age
after which a run that stopped heart-beating is abandoned), as for the CLI. Only the lane lease is set
from the command line, below what the destinations file may say (at least connect + 2 x read timeout,
and the test's receiver must hold a request open for long), so a test need not sit it out. Prints the
run as one JSON line.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import orjson

from integration.app import create_app
from integration.sync import service
from integration.sync.engine import DeliveryEngine
from integration.sync.runs import RunRepository


def main(argv: list[str]) -> int:
    name, lease = argv[0], float(argv[1])
    app = create_app()
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    destination = replace(service.configured(app)[name], lane_lease=lease)
    run, created = service.start(db, settings, destination, {}, "crash-test")
    if created:
        engine = DeliveryEngine(db, settings, destination)
        service.execute(db, settings, destination, run["run_id"], {}, engine=engine)
        with db.reader() as conn:
            run = RunRepository(conn).get(run["run_id"]) or run
    print(orjson.dumps({"created": created, **run}, default=str).decode(), flush=True)
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
