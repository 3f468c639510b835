"""`make run`: the web app on waitress plus the in-process scheduler, stopped cleanly on SIGTERM."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from waitress import create_server

from integration.app import create_app
from integration.fhir_api.export_runner import stop_exports
from integration.ingest.service import write_static_resources
from integration.scheduler import SchedulerService

log = logging.getLogger("horizon.serve")


def main() -> None:
    app = create_app()
    settings = app.config["HORIZON_SETTINGS"]
    # The configuration may have changed since the last start (clinic name, base URL).
    write_static_resources(app.extensions["horizon.db"], app.extensions["horizon.mapping"])
    server = create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.web_threads,
        # waitress buffers bodies before the app sees them; cap it just above the app's own 413 limit.
        max_request_body_size=settings.max_body_bytes + 65536,
        ident="horizon",
    )
    scheduler = SchedulerService(app) if settings.scheduler_enabled else None
    if scheduler:
        scheduler.start()

    def _shutdown(_signum: int, _frame: FrameType | None) -> None:
        # waitress's run() catches this, lets running requests finish and returns.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    host, port = server.effective_host, server.effective_port  # type: ignore[attr-defined]
    log.info(
        "serving",
        extra={
            "url": f"http://{host}:{port}",
            "settings": {r["name"]: r["value"] for r in settings.describe()},
        },
    )
    try:
        server.run()
    finally:
        if scheduler:
            scheduler.stop()
        stop_exports(app)
        log.info("stopped")


if __name__ == "__main__":
    main()
