"""Kick-off parameters of Bulk Data `$export` (Bulk Data Access 2.0, export.md "Query Parameters").

Pure: from (name, value) pairs, a query string or a Parameters body, to a checked ExportRequest.
Parameters the specification defines but this server does not implement are refused with a clear
error (the specification asks for an error rather than a silently different result).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration.strict_params import utc_in_range

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
UNSUPPORTED = ("_elements", "patient", "includeAssociatedData", "_typeFilter")
_SINGLE = ("_outputFormat", "_since")


class ExportParamError(ValueError):
    """A kick-off parameter this server cannot honour; the message names it."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    output_format: str
    since: datetime | None
    types: tuple[str, ...] | None  # None: every type the client may read


def parse_export_params(pairs: Iterable[tuple[str, str]], served: Collection[str]) -> ExportRequest:
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    for name in UNSUPPORTED:
        if name in values:
            raise ExportParamError(f"parameter {name} is not supported by this server")
    for name in _SINGLE:
        if len(values.get(name, [])) > 1:
            raise ExportParamError(f"parameter {name} may be given once")
    output_format = values.get("_outputFormat", [OUTPUT_FORMATS[0]])[0]
    if output_format not in OUTPUT_FORMATS:
        raise ExportParamError(
            f"_outputFormat {output_format[:60]!r} is not supported; use application/fhir+ndjson"
        )
    since = parse_instant(values["_since"][0]) if "_since" in values else None
    types: tuple[str, ...] | None = None
    if "_type" in values:
        named = [t.strip() for value in values["_type"] for t in value.split(",") if t.strip()]
        unknown = [t for t in named if t not in served]
        if unknown:
            raise ExportParamError(
                f"_type names resource types this server does not export: {unknown[0][:60]!r}"
            )
        if not named:
            raise ExportParamError("_type is empty")
        types = tuple(dict.fromkeys(named))
    return ExportRequest(output_format, since, types)


def parameters_pairs(body: Any) -> list[tuple[str, str]]:
    """(name, value) pairs of a FHIR Parameters resource (POST kick-off); values as strings."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise ExportParamError("a POST kick-off needs a FHIR Parameters resource as its body")
    pairs = []
    for parameter in body.get("parameter") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise ExportParamError("every Parameters.parameter needs a name")
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if not isinstance(value, str):
            raise ExportParamError(
                f"parameter {parameter['name'][:40]} needs a string, instant or code value"
            )
        pairs.append((parameter["name"], value))
    return pairs


def parse_instant(text: str) -> datetime:
    """A FHIR instant: date, time and a zone are all required."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+"))  # an unencoded + in a URL
    except ValueError:
        raise ExportParamError(
            f"_since {text[:40]!r} is not a FHIR instant (e.g. 2026-01-31T09:00:00Z)"
        ) from None
    if "T" not in text or moment.tzinfo is None:
        raise ExportParamError(f"_since {text[:40]!r} needs a time and a zone (e.g. 2026-01-31T09:00:00Z)")
    if utc_in_range(moment) is None:
        raise ExportParamError(f"_since {text[:40]!r} falls outside the years 0001 to 9999 in UTC")
    return moment
