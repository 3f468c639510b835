"""A search request's parameters as a typed query, or a SearchError naming the bad one: pure, no I/O.

FHIR R4 3.1.1 (search): parameters of one name repeated are ANDed, comma-separated values ORed;
token `[system]|[code]`; date prefixes (eq ne lt gt le ge sa eb) on the range the value's precision
implies; reference `id`, `Type/id` or an absolute URL. Unknown parameters are dropped (and kept out
of the self link) unless the client asked for `Prefer: handling=strict`, where they are a 400.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from integration.store.search_extract import date_range, normalize, split_reference
from integration.store.search_params import COMMON, SearchParam, params_for
from integration.strict_params import has_control, utc_in_range, whole_number

DEFAULT_COUNT = 50
MAX_COUNT = 1000
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")
# Keys `_sort` accepts besides the date parameters of the searched type.
SORT_COLUMNS = ("_id", "_lastUpdated")
# Parameters that shape the result, not the match; `_format` is negotiated before search runs.
IGNORED = frozenset({"_format", "_pretty"})
# Modifiers per parameter type (R4 3.1.1.5.x); references also take a target type (`subject:Patient`).
MODIFIERS = {
    "string": ("exact", "contains", "missing"),
    "token": ("not", "missing"),
    "uri": ("missing",),
    "date": ("missing",),
    "reference": ("missing",),
}
# Criteria that hold for resources WITHOUT a matching index row: they cannot drive a search.
NEGATED = frozenset({"missing", "not"})


class SearchError(ValueError):
    """A parameter that cannot be searched as given (answered 400 with an OperationOutcome)."""


@dataclass(frozen=True, slots=True)
class Criterion:
    """One parameter occurrence: its definition, modifier and the values any of which may match.

    Value shapes by type: token/uri (system, code, system_given); string str; date (prefix, low,
    high); reference (type | None, id); `_id` str.
    """

    name: str
    type: str
    param: SearchParam | None  # None for `_id` and `_lastUpdated`
    modifier: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Link:
    """An `_include` (source = searched type) or `_revinclude` (source points at the searched type)."""

    source_type: str
    param: SearchParam
    target_type: str | None

    def __str__(self) -> str:
        tail = f":{self.target_type}" if self.target_type else ""
        return f"{self.source_type}:{self.param.name}{tail}"


@dataclass(slots=True)
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    summary_count: bool = False
    total: str = "auto"  # auto | accurate | none
    includes: list[Link] = field(default_factory=list)
    revincludes: list[Link] = field(default_factory=list)
    cursor: tuple[object, ...] | None = None
    snapshot: datetime | None = None  # `_sort` paging: the store as of this instant (search_snapshot.py)
    canonical: list[tuple[str, str]] = field(default_factory=list)  # what the self link repeats


def parse(resource_type: str, pairs: list[tuple[str, str]], *, strict: bool) -> SearchQuery:
    """Parse the (name, value) pairs of one search; raises SearchError."""
    query = SearchQuery(resource_type)
    params = params_for(resource_type)
    for name, value in pairs:
        base, _, modifier = name.partition(":")
        if name in IGNORED:
            continue
        if has_control(name) or has_control(value):
            raise SearchError(f"{name[:60]!r}: search parameters cannot hold control characters")
        handler = _RESULT_PARAMS.get(base)
        if handler is not None and not modifier:
            kept = handler(query, value, strict)
            if base != "_cursor" and kept is not False:
                query.canonical.append((name, value))
            continue
        if base in COMMON and not modifier:
            query.criteria.append(_common(base, value))
        elif base in params:
            query.criteria.append(_criterion(params[base], modifier, value))
        elif strict:
            raise SearchError(f"unknown search parameter {name[:60]!r} for {resource_type}")
        else:
            continue
        query.canonical.append((name, value))
    return query


def encode_cursor(values: tuple[object, ...], snapshot: datetime | None = None) -> str:
    """The last row's sort keys (and the snapshot instant a `_sort` paging began at) as a `_cursor`."""
    keys = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = keys if snapshot is None else {"at": snapshot.isoformat(), "keys": keys}
    return base64.urlsafe_b64encode(orjson.dumps(raw)).decode().rstrip("=")


def moves_on_update(query: SearchQuery) -> bool:
    """Whether an update can move a match in this search's order: a sort key before any `_id` that
    an update can change (`_lastUpdated`, a date). Such pages read the store as of a snapshot."""
    return bool(query.sort) and query.sort[0][0] != "_id"


def _cursor(query: SearchQuery, value: str, strict: bool) -> None:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise SearchError("_cursor is not a cursor this server issued") from None
    if isinstance(raw, dict) and raw.keys() == {"at", "keys"}:
        query.snapshot = _instant(raw["at"])
        raw = raw["keys"]
    if not isinstance(raw, list) or not all(isinstance(v, str) and not has_control(v) for v in raw):
        raise SearchError("_cursor is not a cursor this server issued")
    query.cursor = tuple(raw)


def _instant(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or utc_in_range(moment) is None:
        raise SearchError("_cursor is not a cursor this server issued")
    return moment


def _count(query: SearchQuery, value: str, strict: bool) -> None:
    count = whole_number(value)
    if count is None:
        raise SearchError(f"_count must be a whole number, not {value[:20]!r}")
    query.count = min(count, MAX_COUNT)
    if count == 0:
        query.summary_count = True


def _summary(query: SearchQuery, value: str, strict: bool) -> None:
    if value == "count":
        query.summary_count = True
    elif value != "false":
        raise SearchError(f"_summary={value[:20]!r} is not supported; use count or false")


def _total(query: SearchQuery, value: str, strict: bool) -> None:
    if value not in ("none", "estimate", "accurate"):
        raise SearchError("_total must be none, estimate or accurate")
    query.total = "accurate" if value == "accurate" else "none" if value == "none" else "auto"


def _sort(query: SearchQuery, value: str, strict: bool) -> None:
    allowed = sort_keys(query.resource_type)
    for key in value.split(","):
        name = key.removeprefix("-")
        if name not in allowed:
            raise SearchError(f"_sort by {name[:40]!r} is not supported; use one of {', '.join(allowed)}")
        query.sort.append((name, key.startswith("-")))


def sort_keys(resource_type: str) -> list[str]:
    """What `_sort` accepts for a type: `_id`, `_lastUpdated` and its date parameters."""
    dates = [p.name for p in params_for(resource_type).values() if p.type == "date"]
    return [*SORT_COLUMNS, *dates]


def _include(query: SearchQuery, value: str, strict: bool) -> bool:
    link = _link(value, strict)
    if link is None:
        return False
    if link.source_type != query.resource_type:
        if strict:
            raise SearchError(f"_include={value[:60]!r} does not start from {query.resource_type}")
        return False
    query.includes.append(link)
    return True


def _revinclude(query: SearchQuery, value: str, strict: bool) -> bool:
    link = _link(value, strict)
    if link is None:
        return False
    targets = link.param.targets
    if (targets is not None and query.resource_type not in targets) or link.target_type not in (
        None,
        query.resource_type,
    ):
        if strict:
            raise SearchError(f"_revinclude={value[:60]!r} cannot point at {query.resource_type}")
        return False
    query.revincludes.append(link)
    return True


def _link(value: str, strict: bool) -> Link | None:
    parts = value.split(":")
    param = params_for(parts[0]).get(parts[1]) if len(parts) in (2, 3) else None
    if param is None or param.type != "reference":
        if strict:
            raise SearchError(f"{value[:60]!r} is not an include this server supports (see /fhir/metadata)")
        return None
    target = parts[2] if len(parts) == 3 else None
    if target is not None and param.targets is not None and target not in param.targets:
        raise SearchError(f"{value[:60]!r} names a target type the parameter cannot point at")
    return Link(parts[0], param, target)


_RESULT_PARAMS = {
    "_count": _count,
    "_summary": _summary,
    "_total": _total,
    "_sort": _sort,
    "_include": _include,
    "_revinclude": _revinclude,
    "_cursor": _cursor,
}


def _common(name: str, value: str) -> Criterion:
    if name == "_id":
        return Criterion(name, "_id", None, "", tuple(_split(value, name)))
    return Criterion(name, "date", None, "", tuple(_date(v, name) for v in _split(value, name)))


def _criterion(param: SearchParam, modifier: str, value: str) -> Criterion:
    name = param.name
    if modifier == "missing":
        if value not in ("true", "false"):
            raise SearchError(f"{name}:missing takes true or false, not {value[:20]!r}")
        return Criterion(name, param.type, param, modifier, (value == "true",))
    if param.type == "reference":
        if modifier and not (modifier.isalpha() and modifier[0].isupper()):  # a type: subject:Patient
            raise SearchError(f"modifier :{modifier[:20]} is not supported on {name}")
        values = tuple(_reference(v, modifier or None, param) for v in _split(value, name))
    elif modifier and modifier not in MODIFIERS[param.type]:
        raise SearchError(f"modifier :{modifier[:20]} is not supported on {name}")
    elif param.type == "token":
        values = tuple(_token(v) for v in _split(value, name))
    elif param.type == "uri":
        values = tuple((None, v, False) for v in _split(value, name))
    elif param.type == "string":
        values = tuple(v if modifier == "exact" else normalize(v) for v in _split(value, name))
    else:
        values = tuple(_date(v, name) for v in _split(value, name))
    return Criterion(name, param.type, param, modifier, values)


def _split(value: str, name: str) -> list[str]:
    """Comma-separated alternatives (`\\,` is a literal comma)."""
    parts = [p.replace("\\,", ",") for p in value.replace("\\,", "\x00").split(",")]
    parts = [p.replace("\x00", ",").strip() for p in parts]
    if not parts or any(not p for p in parts):
        raise SearchError(f"{name} needs a value")
    return parts


def _token(value: str) -> tuple[str | None, str | None, bool]:
    """(system, code, system_given): `s|c`, `|c` (no system), `s|` (any code), `c` (any system)."""
    if "|" not in value:
        return None, value, False
    system, _, code = value.partition("|")
    if not system and not code:
        raise SearchError("a token needs a system or a code")
    return system or None, code or None, True


def _date(value: str, name: str) -> tuple[str, datetime, datetime]:
    prefix = value[:2] if value[:2].isalpha() else "eq"
    if value[:2].isalpha() and prefix not in DATE_PREFIXES:
        raise SearchError(f"{name}: prefix {prefix!r} is not supported; use {' '.join(DATE_PREFIXES)}")
    text = value[2:] if value[:2].isalpha() else value
    found = date_range(text)
    if found is None:
        raise SearchError(f"{name}: {text[:40]!r} is not a FHIR date or dateTime")
    return prefix, found[0], found[1]


def _reference(value: str, type_modifier: str | None, param: SearchParam) -> tuple[str | None, str]:
    parsed = split_reference(value)
    if parsed is None:
        if "/" in value or not value:
            raise SearchError(f"{param.name}: {value[:60]!r} is not a reference")
        parsed = (type_modifier, value) if type_modifier else (None, value)
    elif type_modifier and parsed[0] != type_modifier:
        raise SearchError(f"{param.name}:{type_modifier} does not match {value[:60]!r}")
    target_type = parsed[0]
    if target_type is None and param.targets is not None and len(param.targets) == 1:
        target_type = next(iter(param.targets))
    if target_type is not None and param.targets is not None and target_type not in param.targets:
        raise SearchError(f"{param.name} cannot point at {target_type}")
    return target_type, parsed[1]
