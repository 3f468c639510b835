"""A delivery worker in its own process for crash tests: `python -m tests.sync.crash_worker NAME LEASE STALE`.

The same steps as `flask --app wsgi sync run NAME` (`service.start`, then `service.execute`), with two of
production's fixed waits made short so a test need not sit them out: the outbox lease a worker takes
(production: connect + 2 x read timeout + 30 s) and the age after which a run that stopped heart-beating
is abandoned (production: 15 minutes). Settings come from the environment (DATABASE_URL,
HORIZON_DESTINATIONS), as for the CLI. Prints the run as one JSON line.
"""

from __future__ import annotations

import sys

import orjson

from integration.app import create_app
from integration.sync import service
from integration.sync.engine import DeliveryEngine
from integration.sync.runs import RunRepository


def main(argv: list[str]) -> int:
    name, lease, stale = argv[0], float(argv[1]), float(argv[2])
    app = create_app()
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    destination = service.configured(app)[name]
    service.STALE_RUN_SECONDS = stale  # read by service.start
    run, created = service.start(db, destination, {}, "crash-test")
    if created:
        engine = DeliveryEngine(db, settings, destination, lease_seconds=lease)
        service.execute(db, settings, destination, run["run_id"], {}, engine=engine)
        with db.reader() as conn:
            run = RunRepository(conn).get(run["run_id"]) or run
    print(orjson.dumps({"created": created, **run}, default=str).decode(), flush=True)
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
