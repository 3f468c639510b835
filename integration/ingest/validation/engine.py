"""One small engine walks the per-kind field tables, so the contract reads as data, enforced in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from integration.ingest.validation import formats
from integration.ingest.validation.compiler import Predicate, compile_field, compile_shape
from integration.ingest.validation.formats import parse_instant as _instant
from integration.ingest.validation.messages import describe, path_key

# (path, rule, message): cheap tuples while walking; the caller wraps them into RecordError once at the end.
Errors = list[tuple[str, str, str]]
Format = Callable[[str], "tuple[str, str] | None"]
Checker = Callable[["Field", object, str, "Errors | None"], bool]

_FLOAT_MAX = 1.7976931348623157e308


@dataclass(slots=True, eq=False)
class Field:
    """One row of a field table: name, JSON type, required, enum, range, extra format, nested shape."""

    name: str
    type: str  # string, id, integer, number, boolean, date, datetime, object, list, map
    required: bool = False
    enum: frozenset[str] | None = None
    lo: float = -_FLOAT_MAX
    hi: float = _FLOAT_MAX
    fmt: Format | None = None
    shape: Shape | None = None  # fields of an object, or of each object item of a list
    item: Field | None = None  # the item of a list
    enum_rule: str = "enum"
    lo_open: bool = False  # range excludes lo itself (doses: greater than 0)
    check: Checker = field(init=False, repr=False)
    fast: int = field(init=False, repr=False)  # which inline happy path `walk` may take, 0 for none
    ok: Predicate = field(init=False, repr=False)  # compiled: True only when `check` would report nothing

    def __post_init__(self) -> None:
        self.check = _CHECKERS[self.type]
        self.ok = compile_field(self)
        t = self.type
        if t == "number" and not self.lo_open:
            self.fast = _FAST_NUMBER
        elif t == "integer":
            self.fast = _FAST_INTEGER
        elif t == "string" and self.enum is not None:
            self.fast = _FAST_ENUM
        elif t == "string" and self.fmt is None and not self.required:
            self.fast = _FAST_TEXT
        elif t == "datetime":
            self.fast = _FAST_DATETIME
        else:
            self.fast = 0

    def expected(self) -> str:
        """Plain-English name of what the field holds, for messages."""
        if self.enum is not None:
            return "one of " + ", ".join(sorted(self.enum))
        return _EXPECTED[self.type]


class Shape:
    """The fields of one JSON object (a record kind or a nested object), keyed by name.

    `ok` is the shape compiled into one straight-line test (compiler.py): True exactly when `walk` would
    report nothing, so the walk only runs where something is wrong.
    """

    __slots__ = ("fields", "key_set", "ok", "required", "required_set", "what")

    def __init__(self, what: str, *fields: Field) -> None:
        self.what = what
        self.fields = {f.name: f for f in fields}
        self.key_set = frozenset(self.fields)
        self.required = tuple(f.name for f in fields if f.required)
        self.required_set = frozenset(self.required)
        self.ok: Predicate = compile_shape(self)


# Happy paths inlined in `walk`: a Python call per field is most of the cost of a valid record. Any value
# that fails an inline test falls through to the field's full checker, which reports it.
_FAST_NUMBER, _FAST_INTEGER, _FAST_ENUM, _FAST_TEXT, _FAST_DATETIME = 1, 2, 3, 4, 5

_EXPECTED = {
    "string": "a string",
    "id": "an id (a string)",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "date": "a date YYYY-MM-DD",
    "datetime": "a date-time with offset",
    "object": "an object",
    "list": "an array",
    "map": "an object",
}


def walk(obj: dict, shape: Shape, prefix: str, errs: Errors | None) -> bool:
    """Check every key of `obj` against `shape`; report unknown and missing fields. True when all is well."""
    get = shape.fields.get
    ok = True
    for key, value in obj.items():
        f = get(key)
        if f is None:
            if errs is None:
                return False
            name = path_key(key)
            errs.append((prefix + name, "unknown-field", f"unknown field: {shape.what} has no field {name}"))
            ok = False
            continue
        fast = f.fast
        if fast == _FAST_NUMBER:
            t = type(value)
            if (t is float or t is int) and f.lo <= value <= f.hi:  # NaN and infinities fail here
                continue
        elif fast == _FAST_ENUM:
            if type(value) is str and value in f.enum:  # type: ignore[operator]
                continue
        elif fast == _FAST_DATETIME:
            if type(value) is str and type(_instant(value)) is int:
                continue
        elif fast == _FAST_TEXT:
            if type(value) is str:
                continue
        elif fast == _FAST_INTEGER and type(value) is int and f.lo <= value <= f.hi:
            continue
        if not f.check(f, value, prefix, errs):
            ok = False
    if not obj.keys() >= shape.required_set:
        for name in shape.required:
            if name not in obj:
                if errs is None:
                    return False
                f = shape.fields[name]
                errs.append((prefix + name, "required", f"expected {name} ({f.expected()}), it is missing"))
                ok = False
    return ok


def valid(f: Field, value: object) -> bool:
    """Whether `value` passes `f` alone: cross-field rules skip fields that are themselves broken."""
    return f.ok(value) or f.check(f, value, "", None)


def _type(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if errs is not None:
        errs.append((prefix + f.name, "type", f"expected {_EXPECTED[f.type]}, found {describe(value)}"))
    return False


def _string(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if not isinstance(value, str):
        return _type(f, value, prefix, errs)
    if f.required and (not value or value.isspace()):
        if errs is not None:
            errs.append((prefix + f.name, "empty", f"expected a non-empty string, found {describe(value)}"))
        return False
    if f.enum is not None:
        if value in f.enum:
            return True
        if errs is not None:
            errs.append((prefix + f.name, f.enum_rule, f"expected {f.expected()}, found {describe(value)}"))
        return False
    if f.fmt is not None:
        problem = f.fmt(value)
        if problem is not None:
            if errs is not None:
                errs.append((prefix + f.name, problem[0], f"{problem[1]}, found {describe(value)}"))
            return False
    return True


def _id(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if not isinstance(value, str):
        return _type(f, value, prefix, errs)
    problem = formats.id_problem(value)
    if problem is None:
        return True
    if errs is not None:
        errs.append((prefix + f.name, "id", f"{problem}, found {describe(value)}"))
    return False


def _range(f: Field, value: float, prefix: str, errs: Errors | None) -> bool:
    if f.lo < value <= f.hi if f.lo_open else f.lo <= value <= f.hi:
        return True
    if errs is not None:
        if f.hi == _FLOAT_MAX and f.lo == -_FLOAT_MAX:
            bound = "a number within the double-precision range"
        elif f.hi == _FLOAT_MAX:
            bound = f"{'greater than' if f.lo_open else 'at least'} {f.lo:g}"
        else:
            bound = f"between {f.lo:g} and {f.hi:g}"
        errs.append((prefix + f.name, "range", f"expected {bound}, found {describe(value)}"))
    return False


def _number(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    t = type(value)
    if t is int:
        return _range(f, value, prefix, errs)  # type: ignore[arg-type]
    if t is float and not value - value:  # type: ignore[operator]  # NaN and infinities are not JSON numbers
        return _range(f, value, prefix, errs)  # type: ignore[arg-type]
    return _type(f, value, prefix, errs)


def _integer(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if type(value) is int:
        return _range(f, value, prefix, errs)
    return _type(f, value, prefix, errs)


def _boolean(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    return True if type(value) is bool else _type(f, value, prefix, errs)


def _date(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if not isinstance(value, str):
        return _type(f, value, prefix, errs)
    if formats.parse_date(value) is not None:
        return True
    if errs is not None:
        message = f"expected a real calendar date YYYY-MM-DD, found {describe(value)}"
        errs.append((prefix + f.name, "date", message))
    return False


def _datetime(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if not isinstance(value, str):
        return _type(f, value, prefix, errs)
    parsed = formats.parse_instant(value)
    if type(parsed) is int:
        return True
    if errs is not None:
        if parsed == "datetime-offset":
            message = f"expected a date-time with an offset (Z or +HH:MM / -HH:MM), found {describe(value)}"
        else:
            message = f"expected an ISO 8601 date-time like 2026-03-02T09:15-08:00, found {describe(value)}"
        errs.append((prefix + f.name, parsed, message))  # type: ignore[arg-type]
    return False


def _object(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if not isinstance(value, dict):
        return _type(f, value, prefix, errs)
    shape: Shape = f.shape  # type: ignore[assignment]
    return shape.ok(value) or walk(value, shape, prefix + f.name + ".", errs)


def _map(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    return True if isinstance(value, dict) else _type(f, value, prefix, errs)


def _list(f: Field, value: object, prefix: str, errs: Errors | None) -> bool:
    if not isinstance(value, list):
        return _type(f, value, prefix, errs)
    if f.required and not value:
        if errs is not None:
            errs.append((prefix + f.name, "empty", "expected a non-empty array, found an empty one"))
        return False
    item = f.item
    check = item.check  # type: ignore[union-attr]
    ok = True
    name = prefix + f.name
    shape = item.shape  # type: ignore[union-attr]
    if shape is not None:  # objects: walk them directly, and only those the compiled test does not pass
        ok_item = shape.ok
        for i, each in enumerate(value):
            if isinstance(each, dict):
                good = ok_item(each) or walk(each, shape, f"{name}[{i}].", errs)
            else:
                good = check(item, each, f"{name}[{i}]", errs)  # type: ignore[arg-type]
            if not good:
                ok = False
                if errs is None:
                    return False
        return ok
    for i, each in enumerate(value):
        if not check(item, each, f"{name}[{i}]", errs):  # type: ignore[arg-type]
            ok = False
            if errs is None:
                return False
    return ok


_CHECKERS: dict[str, Checker] = {
    "string": _string,
    "id": _id,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "object": _object,
    "list": _list,
    "map": _map,
}
