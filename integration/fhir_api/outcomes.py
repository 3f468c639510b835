"""Every FHIR error leaves as an OperationOutcome; its HTTP status comes from this one table."""

from __future__ import annotations

import orjson
from flask import Response

FHIR_JSON = "application/fhir+json"

# HTTP status -> (issue severity, issue type) per FHIR R4 OperationOutcome.issue.code.
ISSUE_OF_STATUS: dict[int, tuple[str, str]] = {
    400: ("error", "invalid"),
    401: ("error", "login"),
    403: ("error", "forbidden"),
    404: ("error", "not-found"),
    405: ("error", "not-supported"),
    406: ("error", "not-supported"),
    410: ("error", "deleted"),
    500: ("fatal", "exception"),
}


def operation_outcome(status: int, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
    severity, code = ISSUE_OF_STATUS.get(status, ("error", "processing"))
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    response = Response(orjson.dumps(body), status=status, content_type=FHIR_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
