"""A scheduler process for tests: `python -m tests.sync.scheduler_process SECONDS`.

The app's own `SchedulerService` (database lease, one leader) with the sync jobs of the destinations
file at a SECONDS interval (production refuses intervals under 10 s, too slow for a test). Runs until
SIGTERM, then prints its holder id and how many times it ran each job, as one JSON line.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import replace
from types import FrameType

import orjson

from integration.app import create_app
from integration.scheduler import SchedulerService
from integration.sync.jobs import sync_jobs


def main(argv: list[str]) -> int:
    seconds = float(argv[0])
    app = create_app()
    jobs = [replace(s, trigger_args={**s.trigger_args, "seconds": seconds}) for s in sync_jobs(app)]
    service = SchedulerService(app, jobs=jobs)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    service.start()
    print("started", flush=True)
    stop.wait(120)  # bounded even if nobody stops it
    service.stop()
    print(orjson.dumps({"holder": service.holder, "runs": service.runs}).decode(), flush=True)
    app.extensions["horizon.db"].engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
