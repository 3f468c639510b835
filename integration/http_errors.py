"""Every error of the JSON APIs leaves in one shape: {"error": {"status", "code", "message"}}.

The status comes from the exception; nothing from the request body is echoed back, and an
unexpected exception is a 500 that names only the request id to quote when reporting it.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from integration.logs import request_id_var

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A client-facing error with its HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"status": status, "code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = (exc.name or "error").lower().replace(" ", "-")
        headers = dict(exc.get_headers()) if status in (401, 405) else {}
        headers.pop("Content-Type", None)
        return error_response(status, code, exc.description or exc.name or "error", headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        request_id = request_id_var.get()
        return error_response(500, "internal-error", f"internal error; quote request id {request_id}")
