"""Every FHIR error leaves as an OperationOutcome; its HTTP status comes from this one table.

Also the one place that turns a FHIR JSON body into the negotiated wire format: JSON bodies are
the stored bytes; XML is produced with lxml via the fhir.resources models (validation on the way
out costs, so only clients that ask for XML pay it).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from flask import Blueprint, Response, g
from werkzeug.exceptions import HTTPException

from integration.http_errors import ApiError
from integration.logs import request_id_var

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"


def render(
    body: bytes | str | dict[str, Any], fmt: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR resource as a response in `fmt` ("json" or "xml")."""
    if fmt == "xml":
        # A dict may carry stored bytes as orjson.Fragment (bundles): one round trip makes it plain.
        data = orjson.loads(body if isinstance(body, bytes | str) else orjson.dumps(body))
        model = get_fhir_model_class(data["resourceType"]).model_validate(data)
        response = Response(model.model_dump_xml(), status=status, content_type=FHIR_XML)
    else:
        payload = body if isinstance(body, bytes | str) else orjson.dumps(body)
        response = Response(payload, status=status, content_type=FHIR_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# HTTP status -> (issue severity, issue type) per FHIR R4 OperationOutcome.issue.code.
ISSUE_OF_STATUS: dict[int, tuple[str, str]] = {
    400: ("error", "invalid"),
    401: ("error", "login"),
    403: ("error", "forbidden"),
    404: ("error", "not-found"),
    405: ("error", "not-supported"),
    406: ("error", "not-supported"),
    410: ("error", "deleted"),
    415: ("error", "not-supported"),
    429: ("error", "throttled"),
    500: ("fatal", "exception"),
    503: ("error", "transient"),
}


def operation_outcome(
    status: int, diagnostics: str, headers: dict[str, str] | None = None, fmt: str = "json"
) -> Response:
    severity, code = ISSUE_OF_STATUS.get(status, ("error", "processing"))
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    return render(body, fmt, status, headers)


def answer_errors_as_outcomes(bp: Blueprint) -> None:
    """Every error a FHIR blueprint's handlers raise leaves as an OperationOutcome, never `{"error"}`.

    An unexpected exception is a 500 naming only the request id (details go to the log).
    """

    def api_error(exc: ApiError) -> Response:
        return operation_outcome(exc.status, exc.message, exc.headers, g.get("fhir_format", "json"))

    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k != "Content-Type"} if status in (401, 405) else {}
        return operation_outcome(status, exc.description or exc.name, headers, g.get("fhir_format", "json"))

    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        message = f"internal error; quote request id {request_id_var.get()}"
        return operation_outcome(500, message, None, g.get("fhir_format", "json"))

    bp.register_error_handler(ApiError, api_error)
    bp.register_error_handler(HTTPException, http_error)
    bp.register_error_handler(Exception, unexpected)
