"""Strict checks of request input shared by the HTTP APIs: pure, no I/O.

`str.isdigit()` accepts '²' and '٣' that `int()` then refuses, and a database column has a range
an unbounded int or an instant near year 1 or 9999 can leave; ids and cursors with control
characters (NUL above all: PostgreSQL text cannot hold it) must be refused before any SQL runs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # R4 datatypes: id
_WHOLE = re.compile(r"[0-9]{1,18}")  # 18 digits always fit a signed 64-bit column
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def whole_number(text: str, max_digits: int = 18) -> int | None:
    """`text` as an int when it is 1 to `max_digits` ASCII digits; None otherwise."""
    if len(text) > max_digits or _WHOLE.fullmatch(text) is None:
        return None
    return int(text)


def is_fhir_id(text: str) -> bool:
    return FHIR_ID.fullmatch(text) is not None


def has_control(text: str) -> bool:
    """Whether `text` holds an ASCII control character (NUL, newline, DEL, ...)."""
    return _CONTROL.search(text) is not None


def utc_in_range(moment: datetime) -> datetime | None:
    """`moment` in UTC, or None when it falls outside years 1 to 9999 there (e.g. 0001-01-01T00:00+05:00)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None
