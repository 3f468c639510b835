"""Index values of one resource, read by the search-parameter table: pure, no I/O.

`extract(resource)` walks each parameter's FHIRPath-like paths (dotted elements, lists flattened,
`name[x]` for choice elements) and turns what it finds into typed rows: tokens (system, code),
normalized strings, date ranges (FHIR R4 3.1.1.4.2: every date is the range its precision
implies) and references (type, id). `date_range` and `normalize` are shared with the query parser,
so stored values and searched values are normalized the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from integration.store.search_params import SearchParam, params_for

MAX_CODE = 512  # longer token values are not indexed (no code or identifier we produce comes close)
MAX_STRING = 255  # strings are indexed by their first 255 normalized characters (prefix search)
LOWEST = datetime(1, 1, 1, tzinfo=UTC)
HIGHEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_DATE = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


@dataclass(slots=True)
class IndexRows:
    """What one resource contributes to the four index tables (duplicates removed)."""

    tokens: set[tuple[str, str | None, str]] = field(default_factory=set)
    strings: set[tuple[str, str, str]] = field(default_factory=set)
    dates: set[tuple[str, datetime, datetime]] = field(default_factory=set)
    references: set[tuple[str, str | None, str]] = field(default_factory=set)


def extract(resource: dict[str, Any]) -> IndexRows:
    """The index rows of one resource, for every parameter its type defines."""
    rows = IndexRows()
    for param in params_for(resource.get("resourceType", "")).values():
        found: list[Any] = []
        for path in param.paths:
            _walk(resource, path, 0, found)
        for value in found:
            _add(rows, param, value)
    return rows


def normalize(text: str) -> str:
    """Case- and accent-insensitive form of a string (R4 3.1.1.4.4: string search ignores both)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.split())[:MAX_STRING]


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The UTC range a FHIR date/dateTime/instant stands for at its precision; None if malformed.

    Values without a time zone are taken as UTC. A range reaching past year 1 or 9999 in UTC
    (9999-12-31T23:00:00-05:00) is clamped to LOWEST/HIGHEST: nothing stored lies beyond them.
    """
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = _zone(zone)
    try:
        low = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(((fraction or ".")[1:] + "000000")[:6]),
            tzinfo=tz,
        )
    except ValueError:
        return None
    if tz is None:
        return None
    try:
        high = _utc(_end(low, month, day, minute, second, fraction))
    except (OverflowError, ValueError):  # the range ends after 9999-12-31 in its own zone
        high = HIGHEST
    return _utc(low), high


def _end(
    low: datetime,
    month: str | None,
    day: str | None,
    minute: str | None,
    second: str | None,
    fraction: str | None,
) -> datetime:
    """The last microsecond of the range that starts at `low` at the precision given."""
    if fraction:
        return low + timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction) - 1, 6))) - 1)
    if second:
        return low + timedelta(seconds=1, microseconds=-1)
    if minute:
        return low + timedelta(minutes=1, microseconds=-1)
    if day:
        return low + timedelta(days=1, microseconds=-1)
    if month:
        nxt = low.replace(year=low.year + 1, month=1) if low.month == 12 else low.replace(month=low.month + 1)
        return nxt - timedelta(microseconds=1)
    return HIGHEST if low.year == 9999 else low.replace(year=low.year + 1) - timedelta(microseconds=1)


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return LOWEST if moment.year == 1 else HIGHEST


def split_reference(reference: str) -> tuple[str, str] | None:
    """`Type/id` (relative or absolute, version ignored) as (type, id); None for anything else."""
    match = _REFERENCE.search(reference)
    return (match.group(1), match.group(2)) if match else None


def _zone(zone: str | None) -> timezone | None:
    if zone is None or zone == "Z":
        return UTC
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if zone[0] == "-" else offset)


def _walk(node: Any, path: tuple[str, ...], at: int, out: list[Any]) -> None:
    """Append to `out` what `path[at:]` reaches from `node` (lists flattened at every step)."""
    while True:
        if isinstance(node, list):
            for item in node:
                _walk(item, path, at, out)
            return
        if at == len(path):
            out.append(node)
            return
        if not isinstance(node, dict):
            return
        step = path[at]
        at += 1
        if step.endswith("[x]"):
            stem = step[:-3]
            for key, value in node.items():
                if key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper():
                    _walk(value, path, at, out)
            return
        if step not in node:
            return
        node = node[step]


def _add(rows: IndexRows, param: SearchParam, value: Any) -> None:
    name = param.name
    if param.type == "token":
        rows.tokens.update((name, s, c) for s, c in _tokens(value) if c and len(c) <= MAX_CODE)
    elif param.type == "uri":
        if isinstance(value, str) and len(value) <= MAX_CODE:
            rows.tokens.add((name, None, value))
    elif param.type == "string":
        rows.strings.update((name, normalize(s), s[:MAX_STRING]) for s in _strings(value) if s.strip())
    elif param.type == "date":
        found = _dates(value)
        if found is not None:
            rows.dates.add((name, *found))
    elif param.type == "reference" and isinstance(value, dict):
        target = split_reference(str(value.get("reference", "")))
        if target is not None and (param.targets is None or target[0] in param.targets):
            rows.references.add((name, *target))


def _tokens(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str | int):
        yield None, str(value)
    elif isinstance(value, dict):
        if "coding" in value:  # CodeableConcept
            for coding in value["coding"]:
                yield from _tokens(coding)
        elif "code" in value:  # Coding
            yield value.get("system"), str(value["code"])
        elif "value" in value:  # Identifier, ContactPoint
            yield value.get("system"), str(value["value"])


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        parts = _NAME_PARTS if "family" in value or "given" in value else _ADDRESS_PARTS
        for part in parts:
            found = value.get(part)
            for item in found if isinstance(found, list) else [found]:
                if isinstance(item, str):
                    yield item


def _dates(value: Any) -> tuple[datetime, datetime] | None:
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, dict) and ("start" in value or "end" in value):  # Period
        start = date_range(value["start"]) if "start" in value else (LOWEST, LOWEST)
        end = date_range(value["end"]) if "end" in value else (HIGHEST, HIGHEST)
        if start is None or end is None:
            return None
        return start[0], end[1]
    return None
