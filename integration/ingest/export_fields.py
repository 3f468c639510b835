"""What the CSV and XML readers share: the record shapes, typed conversion of text, and their error."""

from __future__ import annotations

import math
import re

from integration.ingest.validation import tables
from integration.ingest.validation.engine import Field, Shape

# The field table of each record kind, at the top level of a file.
SHAPES: dict[str, Shape] = {
    "patient": tables.PATIENT,
    "practitioner": tables.PRACTITIONER,
    "session": tables.SESSION,
    "assessment": tables.ASSESSMENT,
    "referral": tables.REFERRAL,
}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


class ReaderError(ValueError):
    """A structural problem of an export file (not of a record), located by file, line and column."""

    def __init__(
        self, file: str, message: str, *, line: int | None = None, column: str | None = None
    ) -> None:
        self.file, self.line, self.column, self.message = file, line, column, message
        where = file + (f", line {line}" if line is not None else "") + (f", {column}" if column else "")
        super().__init__(f"{where}: {message}")


def number(text: str) -> object:
    """An int for an integer literal, a finite float for a decimal one, else the text unchanged."""
    stripped = text.strip()
    try:
        if _INT.fullmatch(stripped):
            return int(stripped)
        if _FLOAT.fullmatch(stripped) and math.isfinite(value := float(stripped)):
            return value
    except ValueError:  # more digits than Python converts: kept, validation reports it
        pass
    return text


def typed(field: Field | None, text: str) -> object:
    """The JSON value of `text` for a scalar field of the contract (an unknown field stays a string)."""
    kind = field.type if field is not None else "string"
    if kind in ("integer", "number"):
        return number(text)
    if kind == "boolean":
        lowered = text.strip().lower()
        return {"true": True, "false": False}.get(lowered, text)
    return text
