"""Small builders for FHIR R4 datatypes as plain JSON dicts, in the exact form the R4B models dump them.

Mappers build dicts and validate each resource once with the models; the dicts are then serialized directly
(see serialize.py), so they must already be canonical: datetimes as the models print them, no None values and
no empty lists or objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from mappings.codes import Code

UCUM = "http://unitsofmeasure.org"


def dt(value: datetime) -> str:
    """An aware datetime as FHIR dateTime/instant, keeping its offset (UTC printed as Z, like the models)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def day(value: date) -> str:
    """A FHIR date."""
    return value.isoformat()


def utc_key(value: datetime) -> str:
    """The instant in UTC, for ids: the same instant sent with another offset gives the same id."""
    return dt(value.astimezone(UTC))


def num(value: float | int | Decimal) -> float | int:
    """A JSON number for a decimal element: ints stay ints, floats keep their shortest repr."""
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and value.as_tuple().exponent >= 0
            else float(value)
        )
    if isinstance(value, bool):
        raise TypeError("boolean is not a number")
    return value


def dec(value: float | int) -> Decimal:
    """A clinic number as an exact Decimal (via its shortest repr, so 0.1 stays 0.1)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def round_amount(value: Decimal) -> float | int:
    """A computed amount to 2 decimals (half up), printed without trailing zeros."""
    q = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()
    return int(q) if q == q.to_integral_value() else float(q)


def quantity(value: float | int, ucum: str, unit: str | None = None) -> dict:
    """A UCUM Quantity; `unit` is the human-readable unit (defaults to the UCUM code)."""
    return {"value": num(value), "unit": unit or ucum, "system": UCUM, "code": ucum}


def concept(codes: Iterable[Code], base: str, text: str | None = None) -> dict:
    """A CodeableConcept from terminology codes (and an optional text)."""
    out: dict = {}
    codings = [c.coding(base) for c in codes]
    if codings:
        out["coding"] = codings
    if text:
        out["text"] = text
    return out


def text_concept(text: str) -> dict:
    """A CodeableConcept that is free text only (never guessed into a code)."""
    return {"text": text}


def period(start: datetime | None, end: datetime | None) -> dict:
    """A Period with whichever bounds are known."""
    out = {}
    if start is not None:
        out["start"] = dt(start)
    if end is not None:
        out["end"] = dt(end)
    return out
