"""The Flask application factory: settings, store, logging, request ids, blueprints.

Creating the app opens no connection and starts no thread; the scheduler is started only by
`integration.serve` or `flask --app wsgi scheduler`, never as a side effect of import.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from integration import audit, http_errors, logs
from integration.admin.dashboard import bp as admin_dashboard_bp
from integration.admin.dead_letters import bp as admin_dead_letters_bp
from integration.admin.destinations import bp as admin_destinations_bp
from integration.admin.login import bp as admin_login_bp
from integration.admin.syncs import bp as admin_syncs_bp
from integration.audit_events_api import bp as audit_events_bp
from integration.auth.signing_keys import bp as signing_keys_bp
from integration.auth.smart import bp as smart_bp
from integration.fhir_api.bulk_export import bp as fhir_bulk_bp
from integration.fhir_api.everything import bp as fhir_everything_bp
from integration.fhir_api.routes import bp as fhir_bp
from integration.health import bp as health_bp
from integration.ingest.api import bp as intake_bp
from integration.ingest.resources import mapping_context
from integration.settings import Settings
from integration.store.db import Database, make_engine
from integration.summaries import transport as summaries_transport
from integration.summaries.api import bp as summaries_admin_bp
from integration.summaries.delivery_api import bp as summaries_delivery_bp
from integration.sync import service as sync_service

log = logging.getLogger("horizon.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.load()
    logs.configure(settings.log_level)
    app = Flask(__name__)
    app.config.update(
        HORIZON_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    app.extensions["horizon.db"] = Database(engine)
    app.extensions["horizon.mapping"] = mapping_context(settings)
    sync_service.load_into(app, settings)
    summaries_transport.install(app, settings.destinations_file)

    _register_request_context(app)
    http_errors.register(app)
    audit.register(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(intake_bp)
    app.register_blueprint(smart_bp)
    app.register_blueprint(signing_keys_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(fhir_bulk_bp)
    app.register_blueprint(fhir_everything_bp)
    app.register_blueprint(audit_events_bp)
    app.register_blueprint(summaries_admin_bp)
    app.register_blueprint(summaries_delivery_bp)
    app.register_blueprint(admin_syncs_bp)
    app.register_blueprint(admin_destinations_bp)
    app.register_blueprint(admin_dead_letters_bp)
    app.register_blueprint(admin_login_bp)
    app.register_blueprint(admin_dashboard_bp)

    from integration import cli

    cli.register(app)
    return app


def _register_request_context(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        logs.request_id_var.set(g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not log.isEnabledFor(logging.INFO):
            return response  # the access line is not wanted: do not build it
        rule = request.url_rule.rule if request.url_rule else "(unmatched)"
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": rule,
                "status": response.status_code,
                "duration_ms": logs.monotonic_ms(g.get("started", time.perf_counter())),
                "actor": g.get("actor"),
            },
        )
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        logs.request_id_var.set(None)
