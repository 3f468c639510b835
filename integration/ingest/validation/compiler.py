"""Compiles each field table once, at import, into straight-line Python: no table look-ups per value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from integration.ingest.validation import formats

if TYPE_CHECKING:
    from integration.ingest.validation.engine import Field, Shape

# `compile_shape(shape)` writes the source of one function, `ok(obj)`, that answers whether
# `engine.walk(obj, shape, ...)` would report nothing, with every field's test spelled out in line and every
# nested object and list of objects unrolled into it (fastjsonschema does the same for JSON Schema). It only
# ever answers yes or no: on a no, the engine's walk runs and reports, so messages, paths and their order
# come from one place. A no to a value the engine accepts costs time, never correctness; a yes to one it
# rejects would be a bug, which tests/ingest/validation/test_equivalence.py hunts for. It can also hand back
# the instants of the datetime fields it has just parsed (`capture`), for the cross-field rules of a record
# that passed, so that no datetime is parsed twice.

# Of a dict (a shape) or of one field's value. A shape compiled with captures answers a tuple for yes.
Predicate = Callable[[object], object]

_MISSING = object()  # what an optional field's look-up answers when the field is absent


class _Source:
    """Lines of Python being written, the objects they refer to by name, and the captures asked for."""

    def __init__(self, capture: Sequence[str] = ()) -> None:
        self.lines: list[str] = []
        self.names: dict[str, object] = {
            "_MISSING": _MISSING,
            "_instant": formats.parse_instant,
            "_day": formats.day_number,
            "_DAY_PARTS": formats.DAY_PARTS,
            "_TIME_PARTS": formats.TIME_PARTS,
            "_LONGEST_ID": formats.MAX_ID,
        }
        self.ids: dict[int, str] = {}
        self.capture = {path: f"c{i}" for i, path in enumerate(capture)}  # dotted path -> variable
        self.captured: set[str] = set()
        self.path: tuple[str, ...] = ()  # field names from the top down to the field being written
        self.in_list = False  # whether the field being written belongs to each item of a list

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def name(self, prefix: str, value: object) -> str:
        """A global name for `value` in the generated module, one per distinct object."""
        key = id(value)
        if key not in self.ids:
            self.ids[key] = f"{prefix}{len(self.ids)}"
            self.names[self.ids[key]] = value
        return self.ids[key]


def compile_shape(shape: Shape, capture: Sequence[str] = ()) -> Predicate:
    """The predicate of `shape`: true exactly when walking an object with it would report nothing.

    Without `capture` it answers True or False. With it, each entry a dotted path to a datetime field
    (`start`, or `vitals.taken_at` for the field of every item of a list), a yes is the tuple of their
    instants, in that order: an int or None (absent) for a plain field, a list of them, one per item, for
    a field of list items.
    """
    src = _Source(capture)
    _object(src, shape, "o0", 0, 2)
    missing = set(src.capture) - src.captured
    if missing:
        raise ValueError(f"{shape.what}: cannot capture {sorted(missing)}: not datetime fields of it")
    setup = [f"{var} = {'[]' if '.' in path else 'None'}" for path, var in src.capture.items()]
    answer = f"({', '.join(src.capture.values())},)" if capture else "True"
    return _function(src, "o0", shape.what, setup, answer)


def compile_field(f: Field) -> Predicate:
    """The predicate of one field's value: True only when the field's checker would report nothing."""
    src = _Source()
    _check(src, f, "v0", 0, 2)
    return _function(src, "v0", f"field {f.name or 'item'}", [], "True")


def _function(src: _Source, param: str, what: str, setup: list[str], answer: str) -> Predicate:
    """Wrap the body written at depth 2 into `ok(param)`, compile it, and keep its source as its docstring."""
    text = (
        "\n".join(
            [
                f"def ok({param}):",
                *(f"    {line}" for line in setup),
                "    try:",
                *src.lines,
                f"        return {answer}",
                "    except TypeError:  # an unhashable value tested against an enum: the walk will say why",
                "        return False",
            ]
        )
        + "\n"
    )
    namespace = dict(src.names)
    exec(compile(text, f"<validation: {what}>", "exec"), namespace)  # noqa: S102 -- source from our tables
    predicate: Predicate = namespace["ok"]  # type: ignore[assignment]
    predicate.__doc__ = text  # the generated source, for reading and debugging
    return predicate


def _object(src: _Source, shape: Shape, obj: str, level: int, depth: int) -> None:
    """Statements that return False unless the dict in variable `obj` passes `shape`."""
    known = src.name("KNOWN", shape.key_set.issuperset)  # issuperset(dict) runs over its keys, in C
    src.line(depth, f"if not {known}({obj}):  # an unknown field")
    src.line(depth + 1, "return False")
    get = f"g{level}"
    src.line(depth, f"{get} = {obj}.get")
    for f in shape.fields.values():
        _field(src, f, get, level, depth)


def _field(src: _Source, f: Field, get: str, level: int, depth: int) -> None:
    """A required field is looked up plainly: a missing one reads as None, which no test below accepts."""
    v = f"v{level}"
    outer = src.path
    src.path = (*outer, f.name)
    if f.required and f.type == "string" and f.enum is not None:  # the value is tested once: no variable
        src.line(depth, f"if {get}({f.name!r}) not in {_enum(src, f)}:")
        src.line(depth + 1, "return False")
    elif f.required:
        src.line(depth, f"{v} = {get}({f.name!r})")
        _check(src, f, v, level, depth)
    else:
        src.line(depth, f"{v} = {get}({f.name!r}, _MISSING)")
        src.line(depth, f"if {v} is not _MISSING:")
        _check(src, f, v, level, depth + 1)
        var = src.capture.get(".".join(src.path))
        if var is not None and src.in_list:  # one entry per item: None where the item has no such field
            src.line(depth, "else:")
            src.line(depth + 1, f"{var}.append(None)")
    src.path = outer


def _check(src: _Source, f: Field, v: str, level: int, depth: int) -> None:
    """Statements that return False unless the value in variable `v` passes `f`."""
    if f.type == "object":
        src.line(depth, f"if type({v}) is not dict:")
        src.line(depth + 1, "return False")
        _object(src, f.shape, v, level + 1, depth)  # type: ignore[arg-type]
    elif f.type == "list":
        _list(src, f, v, level, depth)
    elif f.type == "datetime":
        _datetime(src, v, depth)
    else:
        src.line(depth, f"if not ({_scalar(src, f, v)}):")
        src.line(depth + 1, "return False")


def _list(src: _Source, f: Field, v: str, level: int, depth: int) -> None:
    item = f.item
    if item is None:
        raise ValueError(f"list field {f.name} has no item")
    src.line(depth, f"if type({v}) is not list{' or not ' + v if f.required else ''}:")
    src.line(depth + 1, "return False")
    x = f"x{level}"
    src.line(depth, f"for {x} in {v}:")
    if item.shape is not None:
        src.line(depth + 1, f"if type({x}) is not dict:")
        src.line(depth + 2, "return False")
        inside, src.in_list = src.in_list, True
        _object(src, item.shape, x, level + 1, depth + 1)
        src.in_list = inside
    else:
        src.line(depth + 1, f"if not ({_scalar(src, item, x)}):")
        src.line(depth + 2, "return False")


def _datetime(src: _Source, v: str, depth: int) -> None:
    """formats.parse_instant's memo look-ups in line, its full parse when they miss; capture if asked."""
    for line in (
        f"if type({v}) is not str:",
        "    return False",
        f"t = _DAY_PARTS.get({v}[:10])",
        f"if t is None or (u := _TIME_PARTS.get({v}[10:])) is None:",
        f"    t = _instant({v})",
        "    if type(t) is not int:",
        "        return False",
        "else:",
        "    t += u",
    ):
        src.line(depth, line)
    path = ".".join(src.path)
    var = src.capture.get(path)
    if var is not None:
        if src.in_list != ("." in path) or len(src.path) > 2:
            raise ValueError(f"cannot capture {path}: only a field, or a field of the items of a list")
        src.line(depth, f"{var}.append(t)" if src.in_list else f"{var} = t")
        src.captured.add(path)


def _scalar(src: _Source, f: Field, v: str) -> str:
    """A Python expression that is true when the value in variable `v` passes `f` (not a container)."""
    t = f.type
    if t == "string":
        if f.enum is not None:
            return f"{v} in {_enum(src, f)}"  # the engine applies no format to an enum
        test = f"type({v}) is str"
        if f.required:
            test += f" and {v} and not {v}.isspace()"
        if f.fmt is not None:
            test += f" and {src.name('FORMAT', f.fmt)}({v}) is None"
        return test
    if t == "id":
        # formats.id_problem's own tests, with its control-character search replaced by isprintable(): every
        # character that search finds (U+0000-001F, U+007F-009F) is one isprintable() refuses. And strip()
        # answers the very string it was given when there is no whitespace (isspace()) to take off either end.
        return (
            f"type({v}) is str and 0 < len({v}) <= _LONGEST_ID and {v}.isprintable() and {v}.strip() is {v}"
        )
    if t in ("integer", "number"):
        kinds = f"type({v}) is int" if t == "integer" else f"(type({v}) is int or type({v}) is float)"
        low = f"{_literal(f.lo)} {'<' if f.lo_open else '<='} {v}"  # NaN fails every comparison
        return f"{kinds} and {low} <= {_literal(f.hi)}"
    if t == "boolean":
        return f"type({v}) is bool"
    if t == "date":
        return f"type({v}) is str and _day({v}) is not None"
    if t == "map":
        return f"type({v}) is dict"
    raise ValueError(f"field {f.name}: no compiled test for type {t!r}")


def _enum(src: _Source, f: Field) -> str:
    """The name of an enum's set. Its members are non-blank strings, so membership alone also rules out every
    other type and the empty-string rule; an unhashable value raises TypeError, which `ok` takes as a no."""
    if any(not isinstance(e, str) or not e or e.isspace() for e in f.enum):  # type: ignore[union-attr]
        raise ValueError(f"enum of {f.name} has blank members")
    return src.name("ENUM", f.enum)


def _literal(bound: float) -> str:
    """A range bound as Python source that reads back as the same number."""
    if not math.isfinite(bound):
        raise ValueError(f"range bound {bound} is not finite")
    return repr(bound)
