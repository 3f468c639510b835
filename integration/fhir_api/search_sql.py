"""A parsed search as SQL over the resource table and the search index, for SQLite and PostgreSQL.

Each criterion becomes a semi-join on its index table: the most selective-looking one (`_id`,
references, then tokens, strings, dates) drives the query through its value index; the others
are checked per candidate through the (resource_type, resource_id, param) index. Paging is keyset:
rows come in (sort keys..., id) order and a page continues strictly after the last row of the
previous one, so rows written meanwhile never shift a page (no skipped or repeated resources).
Sort keys an update can change (`_lastUpdated`, dates) page over a snapshot instead: rows changed
since the paging began keep the place they had then (`search_snapshot.py`).
The compartment rule (`compartment.py`) is part of the WHERE clause of every query.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from integration.fhir_api.compartment import PatientScope
from integration.fhir_api.search_query import NEGATED, Criterion, SearchError, SearchQuery
from integration.store.schema import UtcDateTime, fhir_resource, fhir_search_date
from integration.store.search_extract import LOWEST
from integration.store.search_index import TABLES
from integration.strict_params import utc_in_range

R = fhir_resource.c
_DRIVE_ORDER = {"_id": 0, "reference": 1, "token": 2, "uri": 2, "string": 3, "date": 4, "_lastUpdated": 5}


def page_query(
    query: SearchQuery, scope: PatientScope, moved: dict[str, tuple[object, ...]] | None = None
) -> tuple[Select[Any], dict[str, Any], list[bool]]:
    """The page's rows (id, content, patient_id, k0..kn), the values to run it with, and which keys
    are datetimes.

    With a snapshot (`query.snapshot`), only rows unchanged since then and the `moved` ones (id ->
    their sort keys as of the snapshot, which replace their current ones) are paged.
    """
    shape = _shape(query, scope) if query.snapshot is None and not moved else None
    if shape is None:
        stmt, date_keys = _build_page(query, scope, moved or {})
        return stmt, {}, date_keys
    key, values = shape
    cached = _PAGE_STATEMENTS.get(key)
    if cached is None:
        template, visibility = _template(query, scope)
        cached = _build_page(template, scope, {}, visibility)
        if len(_PAGE_STATEMENTS) >= MAX_CACHED_SHAPES:
            _PAGE_STATEMENTS.clear()  # a bound on memory; rebuilt on the next use of each shape
        _PAGE_STATEMENTS[key] = cached
    return cached[0], values, cached[1]


def _build_page(
    query: SearchQuery,
    scope: PatientScope,
    moved: dict[str, tuple[object, ...]],
    visibility: ColumnElement[bool] | None = None,
) -> tuple[Select[Any], list[bool]]:
    keys = _sort_keys(query, moved)
    columns = [expr.label(f"k{i}") for i, (expr, _, _) in enumerate(keys)]
    stmt = select(R.id, R.content, R.patient_id, *columns).where(*matches(query, scope, visibility))
    if query.snapshot is not None:
        unchanged = R.last_updated <= literal(query.snapshot, UtcDateTime())
        stmt = stmt.where(or_(unchanged, R.id.in_(sorted(moved))) if moved else unchanged)
    if query.cursor is not None:
        stmt = stmt.where(_after(keys, _cursor_values(query.cursor, keys)))
    order = [expr.desc() if desc else expr.asc() for expr, desc, _ in keys]
    return stmt.order_by(*order).limit(query.count + 1), [is_date for _, _, is_date in keys]


# Building a search statement and its cache key costs several times what SQLite takes to run it.
# Searches of one shape (type, parameters, modifiers, value structure, count, paging, scope kind)
# share one statement built with named parameters; each search binds its own values.
_PAGE_STATEMENTS: dict[tuple[object, ...], tuple[Select[Any], list[bool]]] = {}
MAX_CACHED_SHAPES = 512
_CACHED_TYPES = frozenset({"_id", "token", "uri", "reference"})


def _shape(query: SearchQuery, scope: PatientScope) -> tuple[tuple[object, ...], dict[str, Any]] | None:
    """(cache key, values by parameter name) of a search that can share a statement, else None.

    Only criteria whose SQL structure depends on the presence of values, never on the values
    themselves, are cached; sorting by anything but `_id` (dates, snapshots) is built every time.
    """
    if any(name != "_id" for name, _ in query.sort):
        return None
    values: dict[str, Any] = {}
    key: list[object] = [query.resource_type, query.count, tuple(query.sort)]
    for c in query.criteria:
        if c.type not in _CACHED_TYPES or c.modifier in NEGATED:
            return None
        key.append((c.name, c.type, c.modifier))
        for value in c.values:
            key.append(_slot_shape(c.type, value, values))
    if query.cursor is not None:
        if len(query.cursor) != len(sort_names(query)):
            return None  # answered by the uncached path, which names the error
        key.append(("cursor", len(query.cursor)))
        for raw in query.cursor:
            _bind(values, raw)
    if scope.unrestricted:
        key.append("unrestricted")
    else:
        key.append(("restricted", bool(scope.patients)))
        if scope.patients:
            _bind(values, sorted(scope.patients))
        _bind(values, scope.group_id or "")
    return tuple(key), values


def _bind(values: dict[str, Any], value: Any) -> str:
    name = f"v{len(values)}"
    values[name] = value
    return name


def _slot_shape(kind: str, value: Any, values: dict[str, Any]) -> object:
    """Bind a criterion value's parts; returns which parts were present (the structure they give)."""
    if kind in ("token", "uri"):
        system, code, system_given = value
        if code is not None:
            _bind(values, code)
        if system_given and system is not None:
            _bind(values, system)
        return (code is not None, system_given, system is not None)
    if kind == "reference":
        target_type, target_id = value
        _bind(values, target_id)
        if target_type is not None:
            _bind(values, target_type)
        return target_type is not None
    _bind(values, str(value))  # _id
    return None


def _template(query: SearchQuery, scope: PatientScope) -> tuple[SearchQuery, ColumnElement[bool]]:
    """The query with every value replaced by its named parameter, in `_shape`'s order, and the
    compartment rule over parameters."""
    names = (f"v{i}" for i in itertools.count())
    criteria = []
    for c in query.criteria:
        slotted = []
        for value in c.values:
            if c.type in ("token", "uri"):
                system, code, system_given = value
                code_slot = bindparam(next(names)) if code is not None else None
                system_slot = bindparam(next(names)) if system_given and system is not None else None
                slotted.append((system_slot, code_slot, system_given))
            elif c.type == "reference":
                target_id_slot = bindparam(next(names))
                slotted.append((bindparam(next(names)) if value[0] is not None else None, target_id_slot))
            else:
                slotted.append(bindparam(next(names)))
        criteria.append(dataclasses.replace(c, values=tuple(slotted)))
    cursor = tuple(bindparam(next(names)) for _ in query.cursor) if query.cursor is not None else None
    template = dataclasses.replace(query, criteria=criteria, cursor=cursor)
    if scope.unrestricted:
        return template, true()
    patients = bindparam(next(names), expanding=True) if scope.patients else None
    return template, _visible(R, patients, bindparam(next(names)))


def count_query(query: SearchQuery, scope: PatientScope) -> Select[Any]:
    return select(func.count()).select_from(fhir_resource).where(*matches(query, scope))


def visible(scope: PatientScope, columns: Any = R) -> ColumnElement[bool]:
    """The compartment rule (PatientScope.allows) as SQL on a table with resource_type, an id
    column (`id` or `resource_id`) and patient_id."""
    if scope.unrestricted:
        return true()
    return _visible(columns, sorted(scope.patients) if scope.patients else None, scope.group_id or "")


def _visible(columns: Any, patients: Any, group_id: Any) -> ColumnElement[bool]:
    """`visible` over given member ids (None: no member) and Group id: values or bound parameters."""
    patient_id = columns.patient_id
    members = patient_id.in_(patients) if patients is not None else false()
    resource_id = columns.id if "id" in columns else columns.resource_id
    group_ok = or_(columns.resource_type != "Group", resource_id == group_id)
    return and_(or_(patient_id.is_(None), members), group_ok)


def matches(
    query: SearchQuery, scope: PatientScope, visibility: ColumnElement[bool] | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the search's matches (type, not deleted, visible, every criterion);
    `visibility` replaces the compartment rule of `scope` (a cached statement's parameters)."""
    clauses: list[ColumnElement[bool]] = [
        R.resource_type == query.resource_type,
        R.deleted.is_(False),
        visible(scope) if visibility is None else visibility,
    ]
    ordered = sorted(query.criteria, key=lambda c: _DRIVE_ORDER[c.type if c.param else c.name])
    # A negated criterion (`:missing=true`, `:not`) matches by the absence of rows: never the driver.
    driver = next((c for c in ordered if c.param is not None and c.modifier not in NEGATED), None)
    for criterion in ordered:
        clauses.append(_criterion(query.resource_type, criterion, drive=criterion is driver))
    return clauses


def _criterion(resource_type: str, c: Criterion, *, drive: bool) -> ColumnElement[bool]:
    if c.param is None:
        if c.name == "_id":
            return R.id.in_(list(c.values))
        return or_(*(_date_match(v, R.last_updated, R.last_updated) for v in c.values))  # type: ignore[arg-type]
    table = TABLES[c.param.index_type]
    t = table.c
    if c.modifier == "missing":  # R4 3.1.1.5.1: no indexed value at all (true), or some (false)
        has_any = exists().where(
            t.resource_type == resource_type, Selective(t.resource_id == R.id), t.param == c.name
        )
        return not_(has_any) if c.values[0] else has_any
    match = or_(*(_value_match(c, t, v) for v in c.values))
    if c.modifier == "not":  # R4 3.1.1.5.7: no value matches any code given, or no value at all
        return not_(
            exists().where(
                t.resource_type == resource_type, Selective(t.resource_id == R.id), t.param == c.name, match
            )
        )
    if drive:
        ids = select(t.resource_id).where(t.resource_type == resource_type, t.param == c.name, match)
        return R.id.in_(ids)
    # SQLite plans without statistics and would drive this check through the covering value index,
    # a scan of every row with that value (linear in the store); marking the correlation as highly
    # selective makes it read the candidate's own rows through the (type, id, param) index instead.
    return exists().where(
        t.resource_type == resource_type, Selective(t.resource_id == R.id), t.param == c.name, match
    )


class Selective(ColumnElement[bool]):
    """A condition SQLite's planner should take as almost never true (`likelihood(X, 1e-6)`, its
    documented hint; a no-op at run time). Other databases get the condition as it is."""

    inherit_cache = True
    _is_implicitly_boolean = True  # a condition, not a value to compare with 1
    _traverse_internals: ClassVar = [("condition", InternalTraversal.dp_clauseelement)]  # cache key

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition
        self.type = condition.type


@compiles(Selective)
def _condition(element: Selective, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.condition, **kw)


@compiles(Selective, "sqlite")
def _likelihood(element: Selective, compiler: SQLCompiler, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.condition, **kw)}, 0.000001)"


def _value_match(c: Criterion, t: Any, value: Any) -> ColumnElement[bool]:
    if c.type in ("token", "uri"):
        system, code, system_given = value
        parts = []
        if code is not None:
            parts.append(t.code == code)
        if system_given:
            parts.append(t.system == system if system is not None else t.system.is_(None))
        return and_(*parts)
    if c.type == "string":
        if c.modifier == "exact":
            return t.exact == value
        if c.modifier == "contains":
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return t.value.like(f"%{escaped}%", escape="\\")
        # Starts-with as a range on the value index: [v, v + U+10FFFF).
        return and_(t.value >= value, t.value < value + "\U0010ffff")
    if c.type == "reference":
        target_type, target_id = value
        if target_type is None:
            return t.target_id == target_id
        return and_(t.target_id == target_id, t.target_type == target_type)
    return _date_match(value, t.low, t.high)


def _date_match(value: tuple[str, datetime, datetime], low: Any, high: Any) -> ColumnElement[bool]:
    """R4 3.1.1.4.2 on ranges: the resource's [low, high] against the searched [lo, hi]."""
    prefix, lo, hi = value
    same = and_(low >= lo, high <= hi)
    return {
        "eq": same,
        "ne": not_(same),
        "lt": low < lo,
        "gt": high > hi,
        "le": low <= hi,
        "ge": high >= lo,
        "sa": low > hi,
        "eb": high < lo,
    }[prefix]


def sort_names(query: SearchQuery) -> list[tuple[str, bool]]:
    """(key, descending) in order, ending with `_id` as the tie-breaker when no key before it is."""
    names = list(query.sort)
    if not any(name == "_id" for name, _ in names):
        names.append(("_id", False))
    return names


def _sort_keys(query: SearchQuery, moved: dict[str, tuple[object, ...]]) -> list[tuple[Any, bool, bool]]:
    """(expression, descending, is_datetime) per sort key, ending with the id as tie-breaker.

    A `moved` row's keys are the literals given for it (its place as of the paging's snapshot)."""
    keys: list[tuple[Any, bool, bool]] = []
    for i, (name, desc) in enumerate(sort_names(query)):
        if name == "_id":
            keys.append((R.id, desc, False))
            continue
        if name == "_lastUpdated":
            expr: Any = R.last_updated
        else:  # a date parameter: its earliest value, missing dates first
            d = fhir_search_date.c
            earliest = (
                select(func.min(d.low))
                .where(d.resource_type == query.resource_type, d.resource_id == R.id, d.param == name)
                .scalar_subquery()
            )
            expr = func.coalesce(earliest, literal(LOWEST, UtcDateTime()))
        if moved:
            then = {rid: literal(values[i], UtcDateTime()) for rid, values in moved.items()}
            expr = type_coerce(case(then, value=R.id, else_=expr), UtcDateTime())
        keys.append((expr, desc, True))
    return keys


def _cursor_values(cursor: tuple[object, ...], keys: list[tuple[Any, bool, bool]]) -> list[object]:
    if len(cursor) != len(keys):
        raise SearchError("_cursor does not belong to this search")
    values: list[object] = []
    for raw, (_, _, is_date) in zip(cursor, keys, strict=True):
        if is_date:
            try:
                moment = datetime.fromisoformat(str(raw))
            except ValueError:
                raise SearchError("_cursor does not belong to this search") from None
            if moment.tzinfo is None or utc_in_range(moment) is None:
                raise SearchError("_cursor does not belong to this search")
            values.append(moment)
        else:
            values.append(raw)
    return values


def _after(keys: list[tuple[Any, bool, bool]], values: list[object]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the (keys...) order: a lexicographic keyset condition."""
    options = []
    for i, (expr, desc, is_date) in enumerate(keys):
        value = literal(values[i], UtcDateTime()) if is_date else values[i]
        equal_before = [
            k == (literal(values[j], UtcDateTime()) if d else values[j])
            for j, (k, _, d) in enumerate(keys[:i])
        ]
        options.append(and_(*equal_before, expr < value if desc else expr > value))
    return or_(*options)
