"""Batched lookups by composite key, in IN lists small enough for every backend."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# Keeps IN lists well under SQLite's bound-parameter limit and PostgreSQL's sweet spot.
CHUNK = 400


def grouped_chunks(keys: Iterable[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """(first, [seconds...]) for the distinct keys, at most CHUNK seconds at a time."""
    grouped: dict[str, list[str]] = {}
    for first, second in dict.fromkeys(keys):
        grouped.setdefault(first, []).append(second)
    for first, seconds in grouped.items():
        for start in range(0, len(seconds), CHUNK):
            yield first, seconds[start : start + CHUNK]
