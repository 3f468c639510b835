"""Shared helpers of the admin sync endpoints: the configured destinations, JSON bodies, JSON answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from flask import Response, current_app, request

from integration.http_errors import ApiError
from integration.sync import service
from integration.sync.destinations import Destination


def destination(name: str) -> Destination:
    found = service.configured(current_app).get(name)
    if found is None:
        raise ApiError(404, "unknown-destination", "no destination of that name is configured")
    return found


def json_body(allowed: dict[str, type]) -> dict[str, Any]:
    """The request's JSON object (empty when there is no body), keys and types checked."""
    if not request.get_data():
        return {}
    if not request.is_json:
        raise ApiError(415, "unsupported-media-type", "send application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "malformed-json", "the body must be a JSON object")
    for key, value in body.items():
        if key not in allowed:
            raise ApiError(400, "unknown-field", f"unknown field {key[:40]!r}; use {sorted(allowed)}")
        if value is not None and (
            not isinstance(value, allowed[key]) or (allowed[key] is not bool and isinstance(value, bool))
        ):
            raise ApiError(400, "invalid-field", f"field {key!r} must be {allowed[key].__name__}")
    return body


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError

    return Response(
        orjson.dumps(body, default=default), status=status, headers=headers, mimetype="application/json"
    )
