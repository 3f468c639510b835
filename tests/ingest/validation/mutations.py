"""Deterministic mutations of valid records: broken fields, broken cross-field rules, some still valid."""

from __future__ import annotations

import copy
import random
from typing import Any

from integration.ingest.validation import tables
from integration.ingest.validation.engine import Field, Shape
from integration.ingest.validation.instruments import INSTRUMENTS

KIND_SHAPES: dict[str, Shape] = {
    "practitioner": tables.PRACTITIONER,
    "patient": tables.PATIENT,
    "referral": tables.REFERRAL,
    "session": tables.SESSION,
    "assessment": tables.ASSESSMENT,
}

# Values of every JSON type, the edges of the formats, and strings that trip naive checks.
ODD: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**63,
    10**400,
    -(10**400),
    0.0,
    -0.0,
    0.5,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    " ",
    "\t",
    "\x1c",
    "\u00a0",
    "\u2028",
    "\u00ad",
    "\x00",
    "\x7f",
    "\x85",
    "\ud800",
    "x" * 129,
    "x" * 128,
    "é",
    "\u0663",
    "\uff11",
    [],
    [1],
    {},
    {"a": 1},
    "MRN1",
    " MRN1",
    "MRN1 ",
    "a b",
    "ketamine",
    "Ketamine",
    "rxnorm:6130",
    "rxnorm:",
    "mg",
    "mg/kg",
    "mL/h",
    "q1",
    "2026-03-02T09:15:00-08:00",
    "2026-03-02T09:15:00",
    "2026-02-30T10:00Z",
    "2026-03-02T24:00Z",
    "2026-03-02T09:15:60Z",
    "2026-03-02T09:15:00+24:00",
    "2026-03-02T09:15:00.5Z",
    "2026-03-02t09:15Z",
    "2026-03-02 09:15Z",
    "0001-01-01T00:00Z",
    "9999-12-31T23:59:59.999999+23:59",
    "2026-03-02",
    "2024-02-29",
    "2026-02-29",
    "1899-12-31",
    "0000-01-01",
    "F33.2",
    "F3",
    "35489007",
    "35489008",
    "1234567893",
    "1234567890",
    "US",
    "ZZ",
    "en-US",
    "english",
    "urn:oid:1.2",
    "not a uri",
    "a@b.org",
    "a@b",
    "icd10cm",
    "snomed",
    "rxnorm",
    "phq9",
    "bpi_severity",
    "completed",
    "stopped",
    "planned",
]


def _odd(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(ODD))  # a copy: later mutations must not change the pool


def edges(f: Field) -> list[Any]:
    """Numbers at and around a numeric field's bounds, from its table row."""
    if f.type not in ("number", "integer"):
        return []
    out: list[Any] = []
    for bound in (f.lo, f.hi):
        if abs(bound) < 1e300:
            out += [bound, bound - 1, bound + 1, bound - 1e-9, bound + 1e-9, int(bound), float(bound)]
    return out


def shift(text: str, rng: random.Random) -> str:
    """A valid datetime moved by minutes to days, kept in its offset and format when possible."""
    from datetime import datetime, timedelta

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    minutes = rng.choice([-3000, -200, -121, -120, -119, -60, -1, 1, 60, 119, 120, 121, 200, 3000])
    try:
        moved = moment + timedelta(minutes=minutes)
    except OverflowError:  # moved out of years 1-9999
        return text
    return moved.isoformat(timespec=rng.choice(["seconds", "minutes"]))


def _slots(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_slots(child, (*path, key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.extend(_slots(child, (*path, i)))
    return out


def _field_at(shape: Shape, path: tuple) -> Field | None:
    """The table row of the field at `path`, if the path follows the table."""
    f: Field | None = None
    for key in path:
        if isinstance(key, int):
            if f is None or f.item is None:
                return None
            f = f.item
            continue
        if f is not None:
            shape = f.shape  # type: ignore[assignment]
        if shape is None or key not in shape.fields:
            return None
        f = shape.fields[key]
    return f


def mutate(kind: str, rec: dict, rng: random.Random, count: int) -> dict:
    """`rec` (a valid record of `kind`) changed `count` times: values replaced, fields dropped or added."""
    rec = copy.deepcopy(rec)
    shape = KIND_SHAPES[kind]
    for _ in range(count):
        slots = [s for s in _slots(rec) if s]
        if not slots:
            break
        path = rng.choice(slots)
        parent: Any = rec
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        value = parent[key]
        f = _field_at(shape, path)
        action = rng.random()
        if action < 0.12:
            del parent[key]
        elif action < 0.20 and isinstance(parent, dict):
            name = rng.choice(["bogus", "Id", "id ", "taken_at", "systolic", "q1", "q0", "total"])
            parent[name] = _odd(rng)
        elif action < 0.26 and isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(parent)))  # often a duplicate id
        elif action < 0.40 and isinstance(value, str) and f is not None and f.type == "datetime":
            parent[key] = shift(value, rng)
        elif action < 0.55 and f is not None and f.type in ("number", "integer"):
            choices = edges(f)
            if type(value) in (int, float) and abs(value) < 1e300:  # NaN fails too
                choices += [value * 2, value / 2, -value, value + 1, round(value)]
            parent[key] = rng.choice(choices) if choices else _odd(rng)
        elif action < 0.62 and isinstance(value, int) and not isinstance(value, bool) and "answers" in path:
            parent[key] = rng.choice([-1, 0, 1, 3, 4, 6, 10, 11, 2.0, True])
        elif action < 0.66 and "answers" in path and isinstance(parent, dict):
            parent[rng.choice(["q0", "q10", "q24", "Q1", "q1 "])] = rng.randrange(4)
        elif action < 0.72 and f is not None and f.enum is not None:
            parent[key] = rng.choice([*sorted(f.enum), "", "other"])
        elif action < 0.78 and key in ("instrument",):
            parent[key] = rng.choice(sorted(INSTRUMENTS))
        elif action < 0.84 and isinstance(parent, dict):
            other = rng.choice(list(parent))
            parent[key], parent[other] = parent[other], parent[key]  # a value in a neighbour's field
        else:
            parent[key] = _odd(rng)
    return rec
